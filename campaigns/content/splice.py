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

from collections.abc import Callable
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


_MISSING = object()


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


def _blank(value: Any) -> bool:
    # campaigns.content.templating.is_blank for the types that reach it here.
    return value is _MISSING or value is None or (isinstance(value, str) and not value.strip())


class SplicedPart:
    """A template part as static strings and :class:`Slot` s; see the module docstring."""

    def __init__(self, pieces: list[str | Slot], *, html: bool):
        merged: list[str | Slot] = []
        for piece in pieces:
            if isinstance(piece, str) and merged and isinstance(merged[-1], str):
                merged[-1] += piece
            elif piece != "":
                merged.append(piece)
        self.pieces = tuple(merged)
        self.static_length = sum(len(p) for p in merged if isinstance(p, str))
        self._escape: Callable[[str], str] = escape if html else str

    def render(self, context: dict[str, Any]) -> str | None:
        """The part rendered, or None when Jinja must render it (see module docstring)."""
        out: list[str] = []
        size = self.static_length
        quote = self._escape
        for piece in self.pieces:
            if type(piece) is str:
                out.append(piece)
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
        return "".join(out)


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
