"""What the visual editor sends: its project JSON and saved blocks, parsed with bounds.

The editor (GrapesJS, ``static/js/template_editor.js``) posts the template's HTML, which
the sandbox validates like any template, plus its *project* (components and styles as
JSON) so the next visit reopens the same design. The project is never rendered or sent;
it is bounded in size and nesting here so a hostile request cannot make the server parse
without limit.
"""

from __future__ import annotations

import json
from typing import Any

from campaigns.content import footer, templating

#: A project is roughly 3 to 5 times its HTML; the HTML itself is capped at 256 KiB.
MAX_PROJECT_BYTES = 1024 * 1024
#: Deeper than any design (GrapesJS nests rows, cells and text a few levels per section).
MAX_PROJECT_DEPTH = 64
MAX_BLOCK_BYTES = 64 * 1024
MAX_BLOCK_NAME = 80


def _depth(value: Any) -> int:
    """Nesting depth of parsed JSON, iteratively (no recursion on hostile input)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > deepest:
            deepest = depth
            if deepest > MAX_PROJECT_DEPTH:
                return deepest
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return deepest


def _bracket_depth(raw: str) -> int:
    """Maximum bracket nesting of the text, counted before parsing: ``json.loads`` recurses
    once per level, so a megabyte of ``[`` must be refused without being parsed."""
    depth = deepest = 0
    in_string = escaped = False
    for char in raw:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_PROJECT_DEPTH:
                    return deepest
        elif char in "]}":
            depth -= 1
    return deepest


def project_parse(raw: str) -> dict[str, Any] | None:
    """The editor project posted with a template, or ``None`` for a code-only template.

    Raises ``TemplateValidationError`` (part "editor project") when it is too large, too
    deeply nested, not JSON or not an object.
    """
    if not raw.strip():
        return None
    size = len(raw.encode())
    if size > MAX_PROJECT_BYTES:
        raise templating.TemplateValidationError(
            f"is {size:,} bytes; the limit is {MAX_PROJECT_BYTES:,}. Split the design into "
            "smaller templates.",
            part="editor project",
        )
    if _bracket_depth(raw) > MAX_PROJECT_DEPTH:
        raise templating.TemplateValidationError(
            f"nests deeper than {MAX_PROJECT_DEPTH} levels", part="editor project"
        )
    try:
        value = json.loads(raw)
    except ValueError:
        raise templating.TemplateValidationError(
            "is not valid JSON; reload the editor and try again", part="editor project"
        ) from None
    if not isinstance(value, dict):
        raise templating.TemplateValidationError(
            "must be a JSON object (the editor's project data)", part="editor project"
        )
    if _depth(value) > MAX_PROJECT_DEPTH:  # a backstop for the text count above
        raise templating.TemplateValidationError(
            f"nests deeper than {MAX_PROJECT_DEPTH} levels", part="editor project"
        )
    return value


def block_validate(*, name: str, html: str) -> tuple[str, str]:
    """A saved block's cleaned name and HTML; raises ``TemplateValidationError``.

    The HTML must be a valid template fragment (same sandbox checks as a template) and
    must not contain the locked footer, which belongs to the organization, not to blocks.
    """
    name = " ".join(name.split())
    if not name:
        raise templating.TemplateValidationError("needs a name", part="block")
    if len(name) > MAX_BLOCK_NAME:
        raise templating.TemplateValidationError(
            f"name is longer than {MAX_BLOCK_NAME} characters", part="block"
        )
    if not html.strip():
        raise templating.TemplateValidationError("is empty", part="block")
    size = len(html.encode())
    if size > MAX_BLOCK_BYTES:
        raise templating.TemplateValidationError(
            f"is {size:,} bytes; the limit is {MAX_BLOCK_BYTES:,}", part="block"
        )
    if footer.FOOTER_MARKER in html:
        raise templating.TemplateValidationError(
            "contains the organization footer, which every template already has",
            part="block",
        )
    templating.analyze(html, part="block", html=True)
    return name, html
