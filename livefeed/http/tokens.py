"""``/api/tokens``: admins list, make, re-role and revoke the named people's tokens.

A token is shown once, in the answer that made it; only its hash is stored, so a retry with the
same Idempotency-Key gets the record with ``"token": null`` (``storage.tokens.Tokens.issue``).
Every request reads roles from Redis, so a change holds on every node at the next request. The
operator's ``LIVEFEED_EDITOR_TOKEN`` is not stored and always stays an admin; without it, the last
admin token cannot be demoted or revoked here (409 ``last_admin``), so the API cannot lock every
admin out (the CLI still can, and can undo it).
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from livefeed.errors import Conflict, NotFound
from livefeed.http._helpers import authorize, json_response, read_json, state
from livefeed.model.roles import Action, Role
from livefeed.model.schema import decode
from livefeed.model.tokens import IssuedToken, NewToken, TokenPatch, TokenRecord
from livefeed.storage import idempotency
from livefeed.storage.store import Store


async def list_tokens(request: Request) -> Response:
    """Everyone with a token: name, role and when it was made; never a token or its hash."""
    store, _ = state(request)
    await authorize(request, Action.MANAGE_TOKENS)
    return json_response({"tokens": await store.tokens.records()})


async def create_token(request: Request) -> Response:
    """201 with the record and the token, shown only here; 409 ``token_exists``."""
    store, settings = state(request)
    admin = await authorize(request, Action.MANAGE_TOKENS)
    payload = await read_json(request, settings.max_body_bytes)
    new = decode(payload, NewToken)
    key = idempotency.parse_key(request.headers.get("idempotency-key"))
    intent = None
    if key is not None:
        intent = idempotency.token_intent(store.keys, key, admin.name, request.url.path, payload)
    record, token = await store.tokens.issue(new.name, new.role, intent)
    headers = {"Location": f"/api/tokens/{quote(record.name, safe='')}"}
    if token is None:
        headers["Idempotent-Replayed"] = "true"
    issued = IssuedToken(record.name, record.role, record.created_at, token)
    return json_response(issued, 201, headers)


async def patch_token(request: Request) -> Response:
    """Give a token another role: 200 and its record; it holds from the next request on."""
    store, settings = state(request)
    await authorize(request, Action.MANAGE_TOKENS)
    name = _name(request)
    payload = await read_json(request, settings.max_body_bytes)
    patch = decode(payload, TokenPatch)
    await _keep_an_admin(store, settings.editor_token, name, patch.role)
    if not await store.tokens.set_role(name, patch.role):
        raise _not_found(name)
    record = await store.tokens.record(name)
    if record is None:  # revoked just now
        raise _not_found(name)
    return json_response(record)


async def delete_token(request: Request) -> Response:
    """Revoke a token: 204; it is refused from the next request on, on every node."""
    store, settings = state(request)
    await authorize(request, Action.MANAGE_TOKENS)
    name = _name(request)
    await _keep_an_admin(store, settings.editor_token, name, None)
    if not await store.tokens.revoke(name):
        raise _not_found(name)
    return Response(status_code=204)


def _name(request: Request) -> str:
    name: str = request.path_params["name"]
    return name


def _not_found(name: str) -> NotFound:
    return NotFound(f"nobody named {name!r} has a token", code="token_not_found")


async def _keep_an_admin(store: Store, operator_token: str, name: str, role: Role | None) -> None:
    """Conflict ``last_admin`` when ``name`` holds the only admin token and would lose the role
    (``role`` None: revoked), unless the operator's token exists. Checked, then written: two
    admins demoting each other at the same instant can both pass (the CLI restores one)."""
    if operator_token or role is Role.ADMIN:
        return
    records: list[TokenRecord] = await store.tokens.records()
    admins = [record.name for record in records if record.role is Role.ADMIN]
    if admins == [name]:
        raise Conflict(
            f"{name!r} holds the only admin token; make another admin first",
            code="last_admin",
        )
