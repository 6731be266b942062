"""The sanitiser's shortcut: bodies it returns untouched are exactly what nh3 would return."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from livefeed.model.text import _CANONICAL_RE, _sanitize, sanitize_body

pieces = st.one_of(
    st.characters(exclude_categories=["Cs"]),
    st.sampled_from(["<br>", "&amp;", "&lt;", "&gt;", "&nbsp;", "&quot;", "&amp", "<br/>", "\r\n"]),
)
paragraphs = st.lists(st.lists(pieces, max_size=12).map("".join), min_size=1, max_size=4)


@settings(max_examples=3000, deadline=None)
@given(paragraphs=paragraphs)
@example(paragraphs=["Q&amp;A: 1 &lt; 2 &gt; 0&nbsp;", "line<br>line", ""])
@example(paragraphs=["\u00a0"])
def test_a_body_taken_for_canonical_is_what_nh3_returns(paragraphs: list[str]) -> None:
    """Whenever the shortcut applies, the long way gives the body back unchanged."""
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    if _CANONICAL_RE.fullmatch(body):
        assert _sanitize(body) == body
    assert sanitize_body(body) == _sanitize(body.strip())


def test_no_character_changes_under_the_shortcut() -> None:
    """Each code point the shortcut lets through, alone and between letters, survives nh3."""
    for cp in [*range(0x10000), *range(0x10000, 0x110000, 89)]:  # all of the BMP, then a sample
        if 0xD800 <= cp <= 0xDFFF:
            continue
        body = f"<p>a{chr(cp)}b</p><p>{chr(cp)}</p>"
        if _CANONICAL_RE.fullmatch(body):
            assert _sanitize(body) == body, hex(cp)


def test_markup_and_odd_characters_take_the_long_way() -> None:
    """Attributes, other tags, other references, CR, NUL and no-break spaces are not canonical."""
    for body in [
        "<p onclick='x()'>a</p>",
        "<p>a</p><script>b</script>",
        "<p>a &quot;b&quot;</p>",
        "<p>a\r\nb</p>",
        "<p>a\x00b</p>",
        "<p>a\u00a0b</p>",
        "<p>a<br/>b</p>",
        "<p>unclosed",
        "plain text",
    ]:
        assert _CANONICAL_RE.fullmatch(body) is None, body
        assert sanitize_body(body) == _sanitize(body)
