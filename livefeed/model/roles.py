"""Who may do what: the three desk roles and the one table of actions each role may take.

Contributors write drafts and submit them; editors also publish, correct, retract, pin, mark
key events, end coverage, create feeds and publish others' drafts; admins also manage tokens and
read the audit. Every route names its ``Action`` and ``http._helpers.authorize`` checks it here,
so this table is the only place a right is granted. Pure: no I/O.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Role(enum.StrEnum):
    """A token's role, lowest first; each role may do all the one below it may."""

    CONTRIBUTOR = "contributor"
    EDITOR = "editor"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {role: rank for rank, role in enumerate(Role)}

ROLES = tuple(role.value for role in Role)
"""The role names a token can have, lowest first (for the CLI, the API and the document)."""


class Action(enum.StrEnum):
    """Something a token-holder asks to do; ``REQUIRED`` names the lowest role allowed it."""

    READ_DESK = "read_desk"  # who am I, the desk stream, drafts, previews, media and embed checks
    WRITE_DRAFT = "write_draft"  # create, edit, submit, discard one's own drafts; upload media
    PUBLISH = "publish"  # publish, correct, retract, pin, key events, lead, summary, feeds
    REVIEW = "review"  # publish, schedule, send back or discard anyone's draft
    MANAGE_TOKENS = "manage_tokens"
    READ_AUDIT = "read_audit"


REQUIRED: dict[Action, Role] = {
    Action.READ_DESK: Role.CONTRIBUTOR,
    Action.WRITE_DRAFT: Role.CONTRIBUTOR,
    Action.PUBLISH: Role.EDITOR,
    Action.REVIEW: Role.EDITOR,
    Action.MANAGE_TOKENS: Role.ADMIN,
    Action.READ_AUDIT: Role.ADMIN,
}


def allowed(role: Role, action: Action) -> bool:
    """Whether ``role`` may take ``action``."""
    return role.rank >= REQUIRED[action].rank


@dataclass(frozen=True, slots=True)
class Actor:
    """The person behind a request's token: their name (the author of what they write) and
    their role."""

    name: str
    role: Role
