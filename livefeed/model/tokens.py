"""A named person's token as the API shows it (never the token or its hash), and what an admin
sends to make one or change its role.

Pure: no I/O. The name rule here is the one ``storage.tokens`` and the CLI apply too.
"""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta, Struct

from livefeed.errors import ValidationFailed
from livefeed.model.roles import Role
from livefeed.model.schema import AUTHOR_MAX, Instant
from livefeed.model.text import check_text

TOKEN_NAME_MAX = AUTHOR_MAX
"""A token's name is the default byline of what its holder publishes."""

TokenName = Annotated[
    str,
    Meta(
        description="the person's name, the default byline of their briefs; no space at either end",
        extra_json_schema={"minLength": 1, "maxLength": TOKEN_NAME_MAX},
    ),
]
RoleName = Annotated[Role, Meta(description="contributor < editor < admin")]


class TokenRecord(Struct, frozen=True):
    """Someone with a token: their name, role and when the token was made."""

    name: TokenName
    role: RoleName
    created_at: Instant


class IssuedToken(TokenRecord, frozen=True):
    """A token just made: the record and, this once, the token itself."""

    token: Annotated[
        str | None,
        Meta(
            description="the bearer token, shown only in this answer (only its hash is stored); "
            "null when a retry with the same Idempotency-Key replays the creation"
        ),
    ]


class NewToken(Struct, forbid_unknown_fields=True):
    """A token to make for ``name`` with ``role``."""

    name: TokenName
    role: RoleName = Role.EDITOR

    def __post_init__(self) -> None:
        self.name = validate_token_name(self.name)


class TokenPatch(Struct, forbid_unknown_fields=True):
    """A token's new role."""

    role: RoleName


def validate_token_name(name: object) -> str:
    """``name`` if it is 1-100 characters of text with no space at either end; else 422."""
    if not isinstance(name, str):
        raise ValidationFailed("name must be a string", code="invalid_type", field="name")
    if not name:
        raise ValidationFailed("name must not be empty", code="empty_field", field="name")
    if len(name) > TOKEN_NAME_MAX:
        message = f"name must be at most {TOKEN_NAME_MAX} characters"
        raise ValidationFailed(message, code="too_long", field="name")
    if name != name.strip():
        raise ValidationFailed("name may not start or end with a space", field="name")
    return check_text(name, "name")
