"""The text rule, and sanitising a brief's body to the allowed HTML subset. Pure: no I/O.

The text rule (``FORBIDDEN_TEXT``): every text a client sends (headline, body, author, url,
tags, feed title, editor name) may hold any Unicode character except C0 controls other than tab,
LF and CR; DEL and the C1 controls (U+007F-U+009F); surrogates (a ``str`` can only hold them
unpaired); and the non-characters (U+FDD0-U+FDEF and the last two code points of every plane).
XML 1.0 cannot carry most of them (one would break Atom for every reader) and none is text a
reader should see. Input holding one is refused whole (``check_text``: 422 ``invalid_text``
naming the field); text stored before the rule is cleaned of them as it is read (``clean_text``).
"""

from __future__ import annotations

import html
import re

import nh3

from livefeed.errors import ValidationFailed

_FORBIDDEN_ASCII = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f"
_FORBIDDEN_BMP = _FORBIDDEN_ASCII + "\x80-\x9f\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff"
FORBIDDEN_TEXT = re.compile(
    f"[{_FORBIDDEN_BMP}"
    + "".join(chr(plane << 16 | 0xFFFE) + chr(plane << 16 | 0xFFFF) for plane in range(1, 17))
    + "]"
)
"""One character the text rule (module docstring) forbids in any text field."""
# The text rule as ECMA-262 can say it, for JSON Schema; it cannot name the non-characters
# beyond the BMP, which the schemas' descriptions mention instead.
_RULE = r"\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff"
TEXT_PATTERN = rf"^[^{_RULE}]*$"
# Whitespace is collapsed, so a value must have something else, and obey the rule throughout.
NOT_BLANK_PATTERN = rf"^[^{_RULE}]*[^\s{_RULE}][^{_RULE}]*$"
# FORBIDDEN_TEXT scans 20 times slower than a class of BMP characters only: for text without
# astral characters (almost all of it) these find the same characters sooner.
_FORBIDDEN_ASCII_RE = re.compile(f"[{_FORBIDDEN_ASCII}]")
_FORBIDDEN_BMP_RE = re.compile(f"[{_FORBIDDEN_BMP}]")
_ASTRAL_RE = re.compile("[\U00010000-\U0010ffff]")
# Allowed tags that cannot sit inside a <p> (an HTML parser closes the paragraph at them).
_BLOCK_RE = re.compile(r"<(p|ul|ol|li|blockquote)[\s>]")
_ENTITY_RE = re.compile(r"&(#[0-9]+|#x[0-9a-fA-F]+|[a-zA-Z][a-zA-Z0-9]*);")
# Paragraphs of text and line breaks exactly as nh3 writes them: sanitising them changes
# nothing (an export re-imported, a plain-text brief). Not in the text: markup, `&` other than
# the four references nh3 writes, CR (parsing makes it LF), NUL (dropped), U+00A0 (`&nbsp;`),
# and what the text rule forbids in the BMP (the long way drops it; check_text refused the rest).
# Possessive (*+, ++): a body that is not canonical fails at once instead of backtracking.
_TEXT = rf"[^<>&\r\xa0{_FORBIDDEN_BMP}]*+"
_CANONICAL_RE = re.compile(rf"(?:<p>{_TEXT}(?:(?:<br>|&(?:amp|lt|gt|nbsp);){_TEXT})*+</p>)++")

ALLOWED_TAGS = {"p", "br", "a", "strong", "em", "ul", "ol", "li", "blockquote"}
ALLOWED_ATTRIBUTES = {"a": {"href"}}
ALLOWED_SCHEMES = {"http", "https", "mailto"}
# Built once: nh3.clean() builds its sanitiser anew on every call, which costs more than the
# cleaning itself for a 1 KiB body.
_CLEANER = nh3.Cleaner(
    tags=ALLOWED_TAGS,
    attributes={**ALLOWED_ATTRIBUTES, "*": set()},  # "*": none on every tag (ammonia: lang, title)
    url_schemes=ALLOWED_SCHEMES,
    link_rel="noopener noreferrer nofollow",
)


def _forbidden(value: str) -> re.Pattern[str]:
    """The quickest pattern that finds in ``value`` what FORBIDDEN_TEXT would find."""
    if value.isascii():
        return _FORBIDDEN_ASCII_RE
    return FORBIDDEN_TEXT if _ASTRAL_RE.search(value) else _FORBIDDEN_BMP_RE


def obeys_text_rule(value: str) -> bool:
    """True when ``value`` holds no character the text rule forbids."""
    return _forbidden(value).search(value) is None


def check_text(value: str, field: str) -> str:
    """``value`` if it obeys the text rule; else ValidationFailed ``invalid_text`` for ``field``,
    naming the first character at fault by code point (never the character itself)."""
    bad = _forbidden(value).search(value)
    if bad is None:
        return value
    point = ord(bad.group())
    kind = (
        "a surrogate"
        if 0xD800 <= point <= 0xDFFF
        else "a control character"
        if point <= 0x9F
        else "a non-character"
    )
    raise ValidationFailed(
        f"{field} contains U+{point:04X} ({kind}) at character {bad.start()}: text must not "
        "hold control characters other than tab and line breaks, surrogates or non-characters",
        code="invalid_text",
        field=field,
    )


def clean_text(value: str) -> str:
    """``value`` without the characters the text rule forbids: for text stored before the rule."""
    return _forbidden(value).sub("", value)


def _clean_line(value: str, fallback: str) -> str:
    """A one-line field cleaned, whitespace collapsed again; ``fallback`` if nothing is left."""
    return " ".join(clean_text(value).split()) or fallback


_LEADING = re.compile(r"^[\s\ufeff]+")


def sanitize_body(raw: str) -> str:
    """Reduce body text to the allowed HTML subset; plain text becomes paragraphs.

    Idempotent: sanitising its own output changes nothing, so exports re-import byte for byte.
    Text with tags or character references is HTML; anything else is plain text. A reference to
    a character the text rule forbids (``&#1;``) is dropped, as a tag not allowed is.
    """
    text = raw.strip()
    if not text:
        return ""
    if _CANONICAL_RE.fullmatch(text) is not None:
        return text  # what nh3 would give back (tests/test_sanitize.py), ten times sooner
    return _sanitize(text)


def _sanitize(text: str) -> str:
    """``sanitize_body`` the long way, for ``text`` already stripped."""
    if not nh3.is_html(text) and _ENTITY_RE.search(text) is None:
        paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
        text = "".join(
            "<p>" + "<br>".join(html.escape(line, quote=False) for line in p.splitlines()) + "</p>"
            for p in paragraphs
        )
    # A parser drops a byte order mark that starts its input, so one left at the start (from
    # a reference, &#65279;) would not survive sanitising again.
    clean = _LEADING.sub("", clean_text(_CLEANER.clean(text))).rstrip()
    if clean and _BLOCK_RE.search(clean) is None:
        clean = f"<p>{clean}</p>"  # inline-only HTML: give it the paragraph plain text gets
    return clean


# Where a block element of a sanitised body ends, the plain text gets a line break.
_BLOCK_END = re.compile(r"<br\s*/?>|</(?:p|li|blockquote|ul|ol)>", re.IGNORECASE)
# A tag as nh3 writes it: attribute values in double quotes, where ">" may appear unescaped.
_TAG = re.compile(r'<(?:[^>"]|"[^"]*")*+>')
# The references nh3 writes in text, and anything else that looks like one.
_NH3_REFERENCES = (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&nbsp;", "\xa0"))
_OTHER_REFERENCE = re.compile(r"&(?!(?:amp|lt|gt|quot|nbsp);)")


def plain_text(body_html: str) -> str:
    """A sanitised body as plain text: tags dropped, entities decoded, one line per paragraph.

    Linear in the body: the body is nh3's output, so tags are taken out by pattern rather than
    by parsing it again (html5ever takes time quadratic in how deep elements nest).
    """
    text = _TAG.sub("", _BLOCK_END.sub("\n", body_html))
    if _OTHER_REFERENCE.search(text) is None:
        for reference, char in _NH3_REFERENCES:
            text = text.replace(reference, char)
        text = text.replace("&amp;", "&")  # last, so "&amp;lt;" stays "&lt;"
    else:
        text = html.unescape(text)
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)
