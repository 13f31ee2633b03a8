"""A JSON parser with bounds: body size, nesting depth and key count.

Python's ``json`` recurses on nesting (a ``RecursionError`` — an HTTP 500 — for a few
thousand ``[``) and happily builds millions of keys; this parser refuses both with a
``400`` problem (``luxmail.api.problems``) and never quotes the body in its messages.
"""

from __future__ import annotations

import codecs
import json
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


def body_limit(cls: Any) -> int:
    """The largest body a view class takes: its ``max_body_bytes``, else the setting."""
    limit = getattr(cls, "max_body_bytes", None)
    return int(limit or settings.LUXMAIL_API_MAX_BODY_BYTES)


class _TooManyKeys(Exception):
    pass


def loads_bounded(text: str, *, max_depth: int, max_keys: int) -> Any:
    """``json.loads`` that raises ``ParseError`` past ``max_depth`` levels of nesting or
    ``max_keys`` object members in all (counted while parsing, so it stops early)."""
    keys = 0

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal keys
        keys += len(items)
        if keys > max_keys:
            raise _TooManyKeys
        return dict(items)

    try:
        data = json.loads(text, object_pairs_hook=pairs)
    except RecursionError:
        raise ParseError(f"The JSON body is nested more than {max_depth} levels deep.") from None
    except _TooManyKeys:
        raise ParseError(f"The JSON body has more than {max_keys:,} object keys.") from None
    except json.JSONDecodeError as error:
        raise ParseError(
            f"The body is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}."
        ) from None
    except ValueError:  # e.g. an integer of more than 4,300 digits
        raise ParseError("The body is not valid JSON: a value is out of range.") from None
    # Depth, iteratively (no recursion of our own).
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth > max_depth:
                raise ParseError(f"The JSON body is nested more than {max_depth} levels deep.")
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return data


class BoundedJSONParser(JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        view = parser_context.get("view")
        limit = body_limit(type(view) if view is not None else None)
        raw = stream.read(limit + 1)
        if len(raw) > limit:  # a body that arrived without an honest Content-Length
            raise ParseError(f"The request body is larger than {limit:,} bytes.")
        try:
            text = codecs.decode(raw, encoding)
        except (UnicodeDecodeError, LookupError):
            raise ParseError(f"The body is not valid {encoding} text.") from None
        return loads_bounded(
            text,
            max_depth=settings.LUXMAIL_API_MAX_JSON_DEPTH,
            max_keys=settings.LUXMAIL_API_MAX_JSON_KEYS,
        )
