"""``GET /api``: the OpenAPI document as a page people can read, no script needed."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from livefeed.http.openapi import openapi_document
from livefeed.model.text import NOT_BLANK_PATTERN, TEXT_PATTERN
from livefeed.pages import views


async def api_reference_page(request: Request) -> Response:
    """``GET /api``: the document as a page people can read, no script needed."""
    document = openapi_document(request.app.state.settings)
    return views.render(request, "api_reference.html", reference(document))


_METHODS = ("get", "post", "put", "patch", "delete")


def reference(document: dict[str, Any]) -> dict[str, Any]:
    """What the reference page shows: each operation with its parameters, body and answers."""
    schemas = document["components"]["schemas"]
    operations = []
    for path, item in document["paths"].items():
        for method in _METHODS:
            if method not in item:
                continue
            op = item[method]
            body = op.get("requestBody", {}).get("content", {}).get("application/json")
            operations.append(
                {
                    "id": op["operationId"],
                    "method": method.upper(),
                    "path": path,
                    "summary": op["summary"],
                    "description": _prose(op.get("description", "")),
                    "editor": "security" in op,
                    "parameters": [_describe_param(p) for p in op.get("parameters", [])],
                    "body": _fields(body["schema"], schemas) if body else None,
                    "responses": [
                        _describe_response(status, response, schemas)
                        for status, response in op["responses"].items()
                    ],
                }
            )
    sockets = [
        {"path": path, "summary": ws["summary"],
         "parameters": [_describe_param(p) for p in ws["parameters"]],
         "close_codes": sorted(ws["closeCodes"].items())}
        for path, ws in document["x-websockets"].items()
    ]  # fmt: skip
    info = {**document["info"], "description": _prose(document["info"]["description"])}
    return {"info": info, "operations": operations, "websockets": sockets}


def _prose(text: str) -> list[tuple[str, bool]]:
    """Text split at backticks into (part, is_code), so the page can set code as code."""
    return [(part, index % 2 == 1) for index, part in enumerate(text.split("`")) if part]


def _resolve(schema: dict[str, Any], schemas: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    ref = schema.get("$ref", "")
    name = ref.rsplit("/", 1)[-1]
    return (name, schemas[name]) if ref else ("", schema)


def _describe_param(param: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": param["name"],
        "in": param["in"],
        "required": param["required"],
        "type": describe_schema(param["schema"]),
        "description": _prose(param["description"]),
    }


def _fields(schema: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    name, resolved = _resolve(schema, schemas)
    required = set(resolved.get("required", []))
    return {
        "name": name,
        "closed": resolved.get("additionalProperties") is False,
        "fields": [
            {
                "name": field,
                "required": field in required,
                "type": describe_schema(spec),
                "description": _prose(spec.get("description", "")),
            }
            for field, spec in resolved.get("properties", {}).items()
        ],
    }


def _describe_response(
    status: str, response: dict[str, Any], schemas: dict[str, Any]
) -> dict[str, Any]:
    content = response.get("content", {})
    media = next(iter(content), "")
    schema = content.get(media, {}).get("schema", {})
    name = _resolve(schema.get("allOf", [schema])[0], schemas)[0]  # an error is Error + codes
    return {
        "status": status,
        "description": _prose(response["description"]),
        "media": media,
        "schema": name,
        "headers": sorted(response.get("headers", {})),
    }


def describe_schema(schema: dict[str, Any]) -> str:
    """A short human reading of a JSON schema: ``string, 1-300 chars, matches ^...$``."""
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return " or ".join(describe_schema(s) for s in schema["anyOf"])
    if "const" in schema:
        return json.dumps(schema["const"])
    if "enum" in schema:
        return " | ".join(json.dumps(v) for v in schema["enum"])
    kind = str(schema.get("type", "any"))
    if kind == "array":
        kind = f"array of {describe_schema(schema.get('items', {}))}"
    notes = []
    low, high = (
        schema.get("minLength", schema.get("minimum")),
        schema.get("maxLength", schema.get("maximum")),
    )
    unit = " chars" if "maxLength" in schema or "minLength" in schema else ""
    if high is not None:
        notes.append(f"{low:g}-{high:g}{unit}" if low is not None else f"at most {high:g}{unit}")
    elif low is not None:
        notes.append(f"at least {low:g}{unit}")
    if "maxItems" in schema:
        notes.append(f"at most {schema['maxItems']} items")
    if "pattern" in schema and schema["pattern"] not in (NOT_BLANK_PATTERN, TEXT_PATTERN):
        notes.append(f"matching {schema['pattern']}")
    if "format" in schema:
        notes.append(schema["format"])
    if "default" in schema:
        notes.append(f"default {json.dumps(schema['default'])}")
    return ", ".join([kind, *notes])
