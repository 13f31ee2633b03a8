"""Which contact and PHI fields a template needs, and who lacks them (issue 12 item 5).

A template that prints ``{{ phi.next_appointment }}`` for a contact without an
appointment would send "your appointment is on ." to a patient. So every reference to
``contact.*`` or ``phi.*`` is classified (:func:`references`):

* **guarded** — the template says what to do without a value: the reference is the
  subject of ``|default(...)``/``|d(...)`` (through other filters, as in
  ``phi.x|upper|default('soon')``), it is what an ``{% if %}``/``{% elif %}``/inline
  ``if`` tests (``phi.x``, ``phi.x is defined``, ``not phi.x`` for the ``else``
  branch, combined with ``and``/``or``), it sits inside such a test's branch, it is
  the right side of an ``and`` whose left side tests it, the left side of an ``or``
  (``phi.x or 'soon'``), or the list a ``{% for %}`` walks (an empty list prints
  nothing);
* **required** — anything else.

A recipient whose value of a required field is blank (:func:`is_blank`) is not sent:
the pipeline records the message as skipped with the field *names*
(:func:`skip_reason`), never the values. The sandbox's ``default``/``d`` filter and
``defined`` test treat a blank value as missing too (``campaigns/content/templating.py``), so a
guard really fills the hole at render time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import nodes

from campaigns.content import templating
from campaigns.content.templating import is_blank

_BASES = ("contact", "phi")
_DEFAULT_FILTERS = ("default", "d")
SKIP_PREFIX = "missing field"

Key = tuple[str, str]


@dataclass(frozen=True)
class Reference:
    base: str
    name: str
    guarded: bool
    lineno: int

    @property
    def label(self) -> str:
        return f"{self.base}.{self.name}"


def _key(node: nodes.Node, local: set[str]) -> Key | None:
    """``phi.x`` / ``phi['x']`` / ``contact.x`` as (base, name); None for anything else."""
    if isinstance(node, nodes.Getattr):
        attr = node.attr
    elif isinstance(node, nodes.Getitem):
        if not (isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str)):
            return None
        attr = node.arg.value
    else:
        return None
    base = node.node
    if isinstance(base, nodes.Name) and base.name in _BASES and base.name not in local:
        return (base.name, attr)
    return None


def _through_filters(node: nodes.Node) -> nodes.Node:
    """The value under filters and nested lookups: ``phi.custom.plan|upper`` → ``phi.custom``."""
    while (isinstance(node, nodes.Filter) and node.node is not None) or (
        isinstance(node, nodes.Getattr | nodes.Getitem)
        and isinstance(node.node, nodes.Getattr | nodes.Getitem)
    ):
        node = node.node
    return node


class _Walker:
    def __init__(self, local: set[str]):
        self.local = local
        self.found: list[Reference] = []
        self.marked: set[int] = set()  # ids of reference nodes in a guard position

    # What a test asserts is present when true (positive) / when false (negative).
    def _tested(self, test: nodes.Node, positive: bool) -> set[Key]:
        if isinstance(test, nodes.Not):
            return self._tested(test.node, not positive)
        if isinstance(test, nodes.And | nodes.Or):
            left = self._tested(test.left, positive)
            right = self._tested(test.right, positive)
            both = isinstance(test, nodes.And) == positive
            return left | right if both else left & right
        if isinstance(test, nodes.Test) and test.name in ("defined", "undefined"):
            inner = _through_filters(test.node)
            key = _key(inner, self.local)
            if key is None:
                return set()
            self.marked.add(id(inner))
            return {key} if (test.name == "defined") == positive else set()
        inner = _through_filters(test)
        key = _key(inner, self.local)
        if key is None:
            return set()
        self.marked.add(id(inner))  # truthiness only: a blank value is simply false
        return {key} if positive else set()

    def visit(self, node: nodes.Node, guards: frozenset[Key]) -> None:
        if isinstance(node, nodes.If):
            self._visit_if(node, guards)
            return
        if isinstance(node, nodes.CondExpr):
            yes = self._tested(node.test, True)
            no = self._tested(node.test, False)
            self.visit(node.test, guards)
            self.visit(node.expr1, guards | yes)
            if node.expr2 is not None:
                self.visit(node.expr2, guards | no)
            return
        if isinstance(node, nodes.Or):  # ``phi.x or 'soon'``: only x's truth is used
            self._tested(node.left, True)
        if isinstance(node, nodes.And):  # ``phi.age and phi.age >= 50``: short-circuit
            self.visit(node.left, guards)
            self.visit(node.right, guards | self._tested(node.left, True))
            return
        if isinstance(node, nodes.Filter) and node.name in _DEFAULT_FILTERS:
            inner = _through_filters(node.node) if node.node is not None else None
            if inner is not None and _key(inner, self.local) is not None:
                self.marked.add(id(inner))
        if isinstance(node, nodes.For):
            inner = _through_filters(node.iter)
            if _key(inner, self.local) is not None:
                self.marked.add(id(inner))
        key = _key(node, self.local)
        if key is not None:
            guarded = key in guards or id(node) in self.marked
            self.found.append(Reference(key[0], key[1], guarded, node.lineno))
            return
        for child in node.iter_child_nodes():
            self.visit(child, guards)

    def _visit_if(self, node: nodes.If, guards: frozenset[Key]) -> None:
        negatives: set[Key] = set()
        for branch in [node, *node.elif_]:
            positive = self._tested(branch.test, True)
            negative = self._tested(branch.test, False)
            self.visit(branch.test, guards | negatives)
            for child in branch.body:
                self.visit(child, guards | negatives | positive)
            negatives |= negative
        for child in node.else_:
            self.visit(child, guards | negatives)


def references(source: str, *, html: bool = True) -> list[Reference]:
    """Every ``contact.*``/``phi.*`` reference in ``source``, guarded or not."""
    env = templating.HTML_ENV if html else templating.TEXT_ENV
    tree = env.parse(source)
    local = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    walker = _Walker(local)
    walker.visit(tree, frozenset())
    return walker.found


def required_fields(*, subject: str, html: str, text: str = "") -> list[Key]:
    """The (base, name) pairs some part prints without a guard, sorted."""
    required: set[Key] = set()
    for source, is_html in ((subject, False), (html, True), (text, False)):
        if source.strip():
            required |= {
                (r.base, r.name) for r in references(source, html=is_html) if not r.guarded
            }
    return sorted(required)


def referenced_fields(*, subject: str, html: str, text: str = "") -> list[Key]:
    """Every (base, name) pair any part reads, sorted."""
    found: set[Key] = set()
    for source, is_html in ((subject, False), (html, True), (text, False)):
        if source.strip():
            found |= {(r.base, r.name) for r in references(source, html=is_html)}
    return sorted(found)


def missing(context: Mapping[str, Any], required: Iterable[Key]) -> list[str]:
    """Labels (``phi.next_appointment``) of required fields blank in ``context``."""
    labels = []
    for base, name in required:
        values = context.get(base)
        value = values.get(name) if isinstance(values, Mapping) else None
        if is_blank(value):
            labels.append(f"{base}.{name}")
    return labels


def skip_reason(labels: list[str]) -> str:
    """The message's recorded reason: field names only, never values."""
    noun = "field" if len(labels) == 1 else "fields"
    reason = f"{SKIP_PREFIX}: not sent, the contact has no value for the template's {noun} "
    return (reason + ", ".join(labels))[:480]


def blank_context(context: Mapping[str, Any], blank: Iterable[Key]) -> dict[str, Any]:
    """``context`` with the given fields emptied (the preview "as a contact with missing
    fields")."""
    result = {k: dict(v) if isinstance(v, Mapping) else v for k, v in context.items()}
    for base, name in blank:
        if isinstance(result.get(base), dict):
            result[base][name] = ""
    return result
