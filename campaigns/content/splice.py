"""Templates that only print fields, rendered by splicing values between static text.

Most campaign templates are static text with a handful of ``{{ contact.first_name }}``,
``{{ org.name }}`` or ``{{ unsubscribe_url }}`` in it. For those, Jinja's per-render
work (a context, a generator, the sandbox's checks on every chunk) costs far more than
the result: the send path renders tens of thousands of messages per minute
(docs/performance.md). :func:`compile_part` recognizes such a template from its parsed
tree, once per campaign and worker, and :meth:`SplicedPart.render` joins the static
pieces with the recipient's values.

**Same output or no output.** Only these forms are spliced, each exactly as the
sandboxed Jinja environment would print it:

* static text (``TemplateData``, ``{% raw %}`` included);
* ``{{ name }}`` for a top-level string (``unsubscribe_url``, ``preferences_url``);
* ``{{ name.field }}`` for ``contact``/``phi``/``org`` fields;
* either of them with ``| default('constant')`` / ``| d('constant')``.

Any other node (a tag, another filter, arithmetic, an index) and the part is not
spliced: :func:`compile_part` returns ``None`` and Jinja renders it. At render time,
any value that is not a plain string or a small number, a missing value without a
default, a lookup into something that is not a dict, or output longer than the
sandbox allows makes :meth:`SplicedPart.render` return ``None``; the caller then
renders the part with Jinja, which raises the error the author would have seen (or
renders it, if it was a value type this module does not print). Equivalence with Jinja
is tested on ordinary and hostile values (``campaigns/tests/test_splice.py``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from jinja2 import nodes
from markupsafe import escape

from campaigns.content import sandbox
from campaigns.content.sandbox import MAX_OUTPUT_CHARS

# Top-level names printed as they are, and the namespaces whose fields may be printed.
_PLAIN_NAMES = frozenset({"unsubscribe_url", "preferences_url"})
_NAMESPACES = frozenset({"contact", "phi", "org"})
_DEFAULT_FILTERS = frozenset({"default", "d"})
# Numbers are printed with str(); beyond this size Jinja's sandbox weighs them, so they
# go to Jinja.
_MAX_PLAIN_INT = 10**18


@dataclass(frozen=True)
class Slot:
    """One printed value: ``context[name]`` or ``context[name][field]``."""

    name: str
    field: str | None
    default: str | None  # ``| default('…')``: printed when the value is blank or missing


@dataclass(frozen=True)
class Mark:
    """A piece whose text is given to :meth:`SplicedPart.render` in ``marks`` (already
    HTML, printed as is, not counted against the output limit): what link tracking
    adds to every message (``reporting.tracking.track_part``)."""

    key: Any


@dataclass(frozen=True, eq=False)
class Group:
    """Pieces rendered as usual whose joined text is handed to ``marks[key]`` (a
    callable) and replaced by what it returns: a link target that holds a value,
    looked up per message by the tracking (``reporting.tracking.track_part``)."""

    key: Any
    pieces: tuple[str | Slot, ...]


_MISSING = object()
# Placeholder characters of the slots and marks in :meth:`SplicedPart.placeholder_text`:
# supplementary private-use planes A (slots) and B (marks), never in a template (a
# part whose static text holds one is not given placeholders).
_SLOT_BASE = 0xF0000
_MARK_BASE = 0x100000
_PLANE_SIZE = 0xFFFE
_PLACEHOLDER = re.compile("[\U000f0000-\U0010ffff]")


def _slot(expr: nodes.Expr) -> Slot | None:
    default: str | None = None
    if isinstance(expr, nodes.Filter):
        if (
            expr.name not in _DEFAULT_FILTERS
            or expr.node is None
            or len(expr.args) != 1
            or expr.kwargs
            or expr.dyn_args is not None
            or expr.dyn_kwargs is not None
            or not isinstance(expr.args[0], nodes.Const)
            or not isinstance(expr.args[0].value, str)
        ):
            return None
        default = expr.args[0].value
        expr = expr.node
    if isinstance(expr, nodes.Name) and expr.ctx == "load" and expr.name in _PLAIN_NAMES:
        return Slot(expr.name, None, default)
    if (
        isinstance(expr, nodes.Getattr)
        and expr.ctx == "load"
        and isinstance(expr.node, nodes.Name)
        and expr.node.ctx == "load"
        and expr.node.name in _NAMESPACES
        and not expr.attr.startswith("_")
    ):
        return Slot(expr.node.name, expr.attr, default)
    return None


def _text(value: Any) -> str | None:
    """``value`` as Jinja prints it, for the types spliced; None for any other."""
    if type(value) is str:
        return value
    if type(value) is int and -_MAX_PLAIN_INT < value < _MAX_PLAIN_INT:
        return str(value)
    if type(value) is float:
        return str(value)
    return None


def _escape_html(text: str) -> str:
    """``markupsafe.escape(text)`` for a ``str``: most values (names, URLs, addresses)
    have nothing to escape, and five scans cost less than making a ``Markup``."""
    if "&" in text or "<" in text or ">" in text or '"' in text or "'" in text:
        return escape(text)
    return text


def _blank(value: Any) -> bool:
    # campaigns.content.templating.is_blank for the types that reach it here.
    return value is _MISSING or value is None or (isinstance(value, str) and not value.strip())


class SplicedPart:
    """A template part as static strings and :class:`Slot` s; see the module docstring."""

    def __init__(
        self,
        pieces: Sequence[str | Slot | Mark | Group],
        *,
        html: bool,
        static_length: int | None = None,
    ):
        merged: list[str | Slot | Mark | Group] = []
        for piece in pieces:
            if isinstance(piece, str) and merged and isinstance(merged[-1], str):
                merged[-1] += piece
            elif piece != "":
                merged.append(piece)
        self.pieces = tuple(merged)
        # What counts against the output limit: the template's own static text (a
        # tracked copy keeps its original's, as the tracking came after the render).
        self.static_length = (
            sum(len(p) for p in merged if isinstance(p, str))
            if static_length is None
            else static_length
        )
        self.html = html
        self._escape: Callable[[str], str] = _escape_html if html else str
        self.mark_keys = tuple(p.key for p in merged if isinstance(p, Mark | Group))

    def placeholder_text(self) -> str | None:
        """The part with one private-use character per slot (``chr(_SLOT_BASE + i)``
        for the i-th): what the tracking finds its link positions in, once per
        template. None when the static text holds such a character already, or the
        part has marks (it was tracked already)."""
        out: list[str] = []
        slots = 0
        for piece in self.pieces:
            if type(piece) is str:
                if _PLACEHOLDER.search(piece):
                    return None
                out.append(piece)
            elif isinstance(piece, Slot):
                out.append(chr(_SLOT_BASE + slots))
                slots += 1
            else:
                return None
        if slots >= _PLANE_SIZE:
            return None
        return "".join(out)

    def pieces_of(self, text: str) -> list[str | Slot]:
        """A stretch of :meth:`placeholder_text` (slots only) as pieces."""
        slots = [p for p in self.pieces if isinstance(p, Slot)]
        pieces: list[str | Slot] = []
        start = 0
        for found in _PLACEHOLDER.finditer(text):
            code = ord(found.group())
            if code >= _MARK_BASE:
                raise ValueError("a mark inside a group")
            pieces.append(text[start : found.start()])
            pieces.append(slots[code - _SLOT_BASE])
            start = found.end()
        pieces.append(text[start:])
        return [p for p in pieces if p != ""]

    def with_marks(self, text: str, new_marks: list[Mark | Group]) -> SplicedPart:
        """This part rebuilt from ``text``: :meth:`placeholder_text` edited by adding
        static text and placeholders of ``new_marks`` (``chr(_MARK_BASE + i)`` for the
        i-th; the part has no marks yet) — a :class:`Group` takes the place of the
        slots it holds — never reordering slots. Counts against the output limit as
        this part does."""
        slots = [p for p in self.pieces if isinstance(p, Slot)]
        marks = list(new_marks)
        pieces: list[str | Slot | Mark | Group] = []
        start = 0
        for found in _PLACEHOLDER.finditer(text):
            position, code = found.start(), ord(found.group())
            pieces.append(text[start:position])
            pieces.append(
                slots[code - _SLOT_BASE] if code < _MARK_BASE else marks[code - _MARK_BASE]
            )
            start = position + 1
        pieces.append(text[start:])
        return SplicedPart(pieces, html=self.html, static_length=self.static_length)

    def render(self, context: dict[str, Any], marks: dict[Any, Any] | None = None) -> str | None:
        """The part rendered, or None when Jinja must render it (see module docstring).
        ``marks`` gives the text of every :class:`Mark` of the part."""
        out: list[str] = []
        if self._render_into(self.pieces, context, marks, out, self.static_length) is None:
            return None
        return "".join(out)

    def _render_into(
        self,
        pieces: tuple[str | Slot | Mark | Group, ...],
        context: dict[str, Any],
        marks: dict[Any, Any] | None,
        out: list[str],
        size: int,
    ) -> int | None:
        quote = self._escape
        for piece in pieces:
            if type(piece) is str:
                out.append(piece)
                continue
            if type(piece) is Mark:
                assert marks is not None
                out.append(marks[piece.key])
                continue
            if type(piece) is Group:
                assert marks is not None
                inner: list[str] = []
                grown = self._render_into(piece.pieces, context, marks, inner, size)
                if grown is None:
                    return None
                size = grown
                out.append(marks[piece.key]("".join(inner)))
                continue
            assert isinstance(piece, Slot)
            value = context.get(piece.name, _MISSING)
            if piece.field is not None and value is not _MISSING:
                if type(value) is not dict:
                    return None
                value = value.get(piece.field, _MISSING)
            if piece.default is not None and _blank(value):
                value = piece.default
            elif value is _MISSING:
                return None
            text = _text(value)
            if text is None:
                return None
            size += len(text)
            if size > _MAX_SPLICED_CHARS:
                return None
            out.append(quote(text))
        return size


# Jinja's limit on the output, and the sandbox's on what a render may allocate: a longer
# result goes to Jinja, which refuses it with the same message as ever.
_MAX_SPLICED_CHARS = min(MAX_OUTPUT_CHARS, sandbox.MAX_RENDER_ALLOCATION)


def compile_part(tree: nodes.Template, *, html: bool) -> SplicedPart | None:
    """``tree`` (a parsed part) as a :class:`SplicedPart`, or None if it uses anything
    beyond static text and printed fields."""
    pieces: list[str | Slot] = []
    for statement in tree.body:
        if not isinstance(statement, nodes.Output):
            return None
        for item in statement.nodes:
            if isinstance(item, nodes.TemplateData):
                pieces.append(item.data)
                continue
            slot = _slot(item)
            if slot is None:
                return None
            pieces.append(slot)
    return SplicedPart(pieces, html=html)
