"""OpenAPI: every operation's error responses as RFC 9457 problem details."""

from __future__ import annotations

from typing import Any

from luxmail.api.problems import CONTENT_TYPE, TYPES

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details (docs/api.md, Errors).",
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "Field validation: never repeats the submitted value.",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
        "error_id": {"type": "string", "description": "500 only: the id in the server log."},
    },
    "required": ["type", "title", "status", "detail"],
    "additionalProperties": True,
}
_EVERY = (400, 401, 403, 404, 429, 500)
_WITH_BODY = (413, 415)


def add_problem_responses(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    """drf-spectacular post-processing hook (``SPECTACULAR_SETTINGS``)."""
    result.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    ref = {"$ref": "#/components/schemas/Problem"}
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            codes = _EVERY + (_WITH_BODY if method in ("post", "put", "patch") else ())
            responses = operation["responses"]
            for code in codes:
                entry = responses.setdefault(str(code), {"description": TYPES[code][1]})
                entry.setdefault("content", {}).setdefault(CONTENT_TYPE, {"schema": ref})
    return result
