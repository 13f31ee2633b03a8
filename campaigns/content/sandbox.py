"""Bounded rendering: the limits the template sandbox enforces on every render (issue 12).

A template is a program written by any user with the Viewer role (through the preview)
and run in the web process and the send workers. Python cannot stop a thread from
outside, and one C-level operation (``'a' * 10**10``, ``str`` of a deeply shared list,
``10 ** 10**9``) cannot be interrupted at all, so the bounds are enforced *before* each
operation that could grow a value or run long, and the clock is checked between them:

* **Value size.** Every value a template builds, compares, prints or hands to a filter
  weighs at most :data:`MAX_VALUE_SIZE` (characters, roughly; :func:`weight` counts
  nested lists and dicts as their printed size, so a list holding the same big list a
  thousand times weighs what printing it would produce). ``*``, ``+``, ``~``,
  ``**``, ``//`` and ``%`` compute the size of their result first; so do ``replace``,
  ``join``, ``batch``, ``slice``, ``sum`` and ``round``. Integers are limited to
  :data:`MAX_INT_BITS` bits.
* **Total work.** Everything built during one render is charged against
  :data:`MAX_RENDER_ALLOCATION`, so repeating a permitted operation many times cannot
  add up to a lot of memory; loops iterate through a guard counting
  :data:`MAX_LOOP_ITERATIONS` over the whole render; ``range()`` is capped.
* **Output.** Output is streamed and capped at :data:`MAX_OUTPUT_CHARS`; macro, call
  and ``{% set %}`` block buffers are joined by a guarded ``concat`` with the same cap.
* **Time.** The wall clock is checked at every loop iteration, call, operator, filter,
  test and output chunk. Because no single step above can run long, a render ends
  within milliseconds of its deadline.

Filters that cannot be bounded this way are not installed (``center``, ``format``,
``wordwrap``, ``indent``, ``filesizeformat``, ``pprint``, ``tojson``, ``attr``, ``map``
and friends: see ``templating.ALLOWED_FILTERS``); string methods cannot be called.
Breaking a limit raises :class:`LimitExceeded`, which the renderer reports as a
``RenderError`` naming the limit.
"""

from __future__ import annotations

import functools
import itertools
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import TemplateSyntaxError
from jinja2.filters import make_attrgetter
from jinja2.runtime import markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_OUTPUT_CHARS = 1024 * 1024
MAX_VALUE_SIZE = 100_000
MAX_RENDER_ALLOCATION = 4_000_000
MAX_LOOP_ITERATIONS = 20_000
MAX_RANGE = 1000
MAX_INT_BITS = 4096
MAX_PRECISION = 100
MAX_TRIM_CHARS = 256
#: Compiling costs time and memory per token (about 1 s and 30 MB for 5,000 on a busy
#: machine), so a template's parts are limited in tokens and nesting, not only in bytes.
MAX_TOKENS = 5_000
MAX_NESTING = 50
#: Wall-clock budget of one render (all parts of a message together). Below the
#: documented 2 s so that a refused render has also *ended* within 2 s.
DEFAULT_TIME_LIMIT = 1.5

LOOP_GUARD = "_luxmail_loop_guard"
BOUNDED = "_luxmail_bounded"


class LimitExceeded(Exception):
    """A render broke one of the limits; ``str()`` is a sentence for the author."""


# --- the per-render budget ----------------------------------------------------------------


class _Budget(threading.local):
    deadline: float = 0.0
    iterations: int = 0
    allocated: int = 0
    active: bool = False


_budget = _Budget()


@contextmanager
def limits(time_limit: float = DEFAULT_TIME_LIMIT) -> Iterator[None]:
    """One render's budget; nested uses (one part inside a whole message) share it."""
    if _budget.active:
        yield
        return
    _budget.deadline = time.monotonic() + time_limit
    _budget.iterations = 0
    _budget.allocated = 0
    _budget.active = True
    try:
        yield
    finally:
        _budget.active = False


def check_clock() -> None:
    budget = _budget
    if budget.active and time.monotonic() > budget.deadline:
        raise LimitExceeded("rendering took longer than the time limit; simplify the template")


def charge(units: int) -> None:
    """Count ``units`` of newly built value against the render's allocation budget."""
    if _budget.active:
        _budget.allocated += units
        if _budget.allocated > MAX_RENDER_ALLOCATION:
            raise LimitExceeded(
                f"the template builds more than {MAX_RENDER_ALLOCATION:,} characters of "
                "values in one message; simplify it"
            )


def weight(value: Any, limit: int = MAX_VALUE_SIZE) -> int:
    """About the printed size of ``value``, counting stops as soon as it passes ``limit``.

    Shared references count every time (printing or comparing visits them every
    time), and the work done here is bounded by ``limit``, not by the value.
    """
    if isinstance(value, str):  # the common case, first
        return len(value) + 2
    total = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item) + 2
        elif item is None or isinstance(item, bool | float):
            total += 24
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 1
        elif isinstance(item, Mapping):
            total += 2 + 4 * len(item)
            if total > limit:
                return total
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            total += 2 + 2 * len(item)
            if total > limit:
                return total
            stack.extend(item)
        else:
            total += 40
        if total > limit:
            return total
    return total


def require_small(value: Any, what: str) -> None:
    if isinstance(value, _SCALARS) and not isinstance(value, str | int):
        return
    if weight(value) > MAX_VALUE_SIZE:
        raise LimitExceeded(f"{what} is larger than the limit of {MAX_VALUE_SIZE:,} characters")


def _too_big(what: str) -> LimitExceeded:
    return LimitExceeded(f"{what} is limited to {MAX_VALUE_SIZE:,} characters")


def _bits(value: Any) -> int:
    return abs(value).bit_length() if isinstance(value, int) else 0


# --- guarded operations ----------------------------------------------------------------------


def loop_guard(iterable: Any) -> Iterator[Any]:
    if isinstance(iterable, jinja2.Undefined):
        iter(iterable)  # raises the StrictUndefined error with its own message
    for item in iterable:
        if _budget.active:
            _budget.iterations += 1
            if _budget.iterations > MAX_LOOP_ITERATIONS:
                raise LimitExceeded(
                    f"loops ran more than {MAX_LOOP_ITERATIONS:,} times in one message"
                )
            check_clock()
        yield item


def capped_range(*args: int) -> range:
    check_clock()
    result = range(*args)
    if len(result) > MAX_RANGE:
        raise LimitExceeded(f"range() is limited to {MAX_RANGE:,} items")
    return result


def bounded(value: Any) -> Any:
    """Identity, after checking the size (wrapped around both sides of comparisons)."""
    check_clock()
    require_small(value, "a compared value")
    return value


def binop(operator: str, left: Any, right: Any) -> Any:
    """``left <operator> right``, refused before computing if the result would be too big."""
    check_clock()
    if type(left) is int and type(right) is int and operator in _SMALL_INT_RESULTS:
        return _BINOPS[operator](left, right)  # no bigger than the larger operand, + 1 bit
    if isinstance(left, str) and operator == "%":
        raise LimitExceeded("string formatting with % is not available in templates")
    if operator == "*":
        if isinstance(left, int) and isinstance(right, str | list | tuple):
            left, right = right, left
        if isinstance(left, str | list | tuple) and isinstance(right, int):
            times = max(right, 0)
            if isinstance(left, str):
                size = len(left) * times
            else:
                size = weight(left, MAX_VALUE_SIZE // max(times, 1) + 1) * times
            if size > MAX_VALUE_SIZE:
                raise _too_big("repeating a value")
            charge(len(left) * times)
        elif _bits(left) + _bits(right) > MAX_INT_BITS:
            raise LimitExceeded(f"numbers are limited to {MAX_INT_BITS:,} bits")
    elif operator == "+":
        if isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple):
            if weight(left) + weight(right) > MAX_VALUE_SIZE:
                raise _too_big("joining two values")
            charge(len(left) + len(right))
    elif operator == "**":
        if isinstance(right, int | float) and abs(right) > 100:
            raise LimitExceeded("exponents are limited to 100")
        if isinstance(left, int | float) and abs(left) > 10**6:
            raise LimitExceeded("the base of ** is limited to one million")
    result = _BINOPS[operator](left, right)
    if isinstance(result, int) and _bits(result) > MAX_INT_BITS:
        raise LimitExceeded(f"numbers are limited to {MAX_INT_BITS:,} bits")
    return result


_SMALL_INT_RESULTS = frozenset({"+", "-", "//", "%"})
_BINOPS: dict[str, Callable[[Any, Any], Any]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b,
    "//": lambda a, b: a // b,
    "%": lambda a, b: a % b,
    "**": lambda a, b: a**b,
}


def concat(autoescape: bool, parts: tuple[Any, ...]) -> str:
    """The ``~`` operator, sized before it joins."""
    check_clock()
    total = 0
    for part in parts:
        total += weight(part, MAX_VALUE_SIZE - total + 1)
        if total > MAX_VALUE_SIZE:
            raise _too_big("joining text with ~")
    result: str = markup_join(parts) if autoescape else str_join(parts)
    if len(result) > MAX_VALUE_SIZE:
        raise _too_big("joining text with ~")
    charge(len(result))
    return result


def buffer_concat(chunks: Any) -> str:
    """Joins macro, ``caller()`` and ``{% set %}`` block output (``environment.concat``)."""
    check_clock()
    chunks = list(chunks)
    size = sum(len(chunk) for chunk in chunks)
    if size > MAX_OUTPUT_CHARS:
        raise LimitExceeded(f"the rendered message exceeds {MAX_OUTPUT_CHARS:,} characters")
    charge(size)
    return "".join(chunks)


def finalize(value: Any) -> Any:
    """Every ``{{ … }}`` passes here before it is turned into (escaped) text.

    That text is a new string even when the value is not, and inside a macro, a call
    block or a ``{% set %}`` block it is kept until the block ends: so it is charged.
    """
    if isinstance(value, str):
        budget = _budget
        if budget.active:
            budget.allocated += len(value)
            if budget.allocated > MAX_RENDER_ALLOCATION:
                charge(0)  # raises with the message
    else:
        size = weight(value)
        if size > MAX_VALUE_SIZE:
            raise LimitExceeded(
                f"a printed value is larger than the limit of {MAX_VALUE_SIZE:,} characters"
            )
        charge(size)
    return value


# --- filters and tests --------------------------------------------------------------------


def _check_replace(s: Any, old: Any, new: Any, count: Any = None) -> None:
    text, old, new = str(s), str(old), str(new)
    found = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    if len(text) + found * (len(new) - len(old)) > MAX_VALUE_SIZE:
        raise _too_big("the result of replace")


def _check_join(value: Any, d: Any = "", attribute: Any = None) -> None:
    size = weight(value) + len(str(d)) * max(len(value) - 1, 0)
    if size > MAX_VALUE_SIZE:
        raise _too_big("the result of join")


def _check_count(name: str, parameter: str) -> Callable[..., None]:
    def check(value: Any, *args: Any, **kwargs: Any) -> None:
        count = args[0] if args else kwargs.get(parameter)
        if isinstance(count, int) and count > MAX_RANGE:
            raise LimitExceeded(f"{name}() is limited to {MAX_RANGE:,}")

    return check


def _check_round(value: Any, precision: Any = 0, method: Any = "common") -> None:
    if isinstance(precision, int) and abs(precision) > MAX_PRECISION:
        raise LimitExceeded(f"round() precision is limited to {MAX_PRECISION}")


def _check_trim(value: Any, chars: Any = None) -> None:
    if chars is not None and len(str(chars)) > MAX_TRIM_CHARS:
        raise LimitExceeded(f"trim() takes at most {MAX_TRIM_CHARS} characters")


def _numbers_only(values: Any, start: Any) -> None:
    if not all(isinstance(v, int | float) for v in itertools.chain(values, [start])):
        raise LimitExceeded("sum() adds numbers only")


#: Filters that return one of their inputs or a number, in constant time: not wrapped
#: (the wrapper costs about half a microsecond a call, and these are the common ones).
UNBOUNDED_FILTERS = frozenset({"default", "d", "length", "count", "first", "last", "abs"})

PRECHECKS: dict[str, Callable[..., None]] = {
    "replace": _check_replace,
    "join": _check_join,
    "batch": _check_count("batch", "linecount"),
    "slice": _check_count("slice", "slices"),
    "round": _check_round,
    "trim": _check_trim,
}


_SCALARS = (str, int, float, bool, type(None))
_NOT_ITERATORS = (*_SCALARS, list, tuple, dict)


def _materialize(value: Any) -> Any:
    if not isinstance(value, _NOT_ITERATORS) and isinstance(value, Iterator):
        items = list(itertools.islice(value, MAX_VALUE_SIZE + 1))
        if len(items) > MAX_VALUE_SIZE:
            raise LimitExceeded(f"a sequence is longer than {MAX_VALUE_SIZE:,} items")
        return items
    return value


def bound_callable(name: str, func: Any, kind: str) -> Callable[..., Any]:
    """``func`` (a filter or test) with its inputs and its result size-checked."""
    passes = getattr(func, "jinja_pass_arg", None) is not None
    skip = 1 if passes else 0
    precheck = PRECHECKS.get(name) if kind == "filter" else None

    what = f"the value given to {kind} '{name}'"

    @functools.wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        check_clock()
        if len(args) > skip and not isinstance(args[skip], _NOT_ITERATORS):
            args = (*args[:skip], _materialize(args[skip]), *args[skip + 1 :])
        for value in itertools.chain(args[skip:], kwargs.values()):
            if type(value) is str:
                if len(value) > MAX_VALUE_SIZE:
                    raise LimitExceeded(
                        f"{what} is larger than the limit of {MAX_VALUE_SIZE:,} characters"
                    )
            else:
                require_small(value, what)
        if precheck is not None:
            precheck(*args[skip:], **kwargs)
        if name == "sum":
            values = args[skip]
            attribute = kwargs.get("attribute", args[skip + 1] if len(args) > skip + 1 else None)
            if attribute is not None:
                values = map(make_attrgetter(args[0], attribute), values)
            _numbers_only(
                values, kwargs.get("start", args[skip + 2] if len(args) > skip + 2 else 0)
            )
        result = func(*args, **kwargs)
        if isinstance(result, str | list | tuple):
            if weight(result) > MAX_VALUE_SIZE:
                raise _too_big(f"the result of {name}")
            charge(len(result))
        return result

    return guarded


# --- the environment -------------------------------------------------------------------------


class BoundedCodeGenerator(CodeGenerator):
    """Compiles ``~`` to :func:`concat` (sized before joining) instead of a bare join."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        if frame.eval_ctx.volatile:
            autoescape = "context.eval_ctx.autoescape"
        else:
            autoescape = repr(bool(frame.eval_ctx.autoescape))
        self.write(f"environment.luxmail_concat({autoescape}, (")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """An immutable sandbox whose every growing or long-running operation is bounded.

    Subclasses choose the filters and tests (``self.filters``/``self.tests``) and then
    call :meth:`bound_filters_and_tests`.
    """

    code_generator_class = BoundedCodeGenerator
    intercepted_binops = frozenset({"*", "+", "**", "//", "%"})
    luxmail_concat = staticmethod(concat)

    def __init__(self, **options: Any):
        super().__init__(finalize=finalize, **options)
        self.concat = buffer_concat  # type: ignore[method-assign]

    def bound_filters_and_tests(self) -> None:
        self.filters = {
            name: func if name in UNBOUNDED_FILTERS else bound_callable(name, func, "filter")
            for name, func in self.filters.items()
        }
        self.tests = {name: bound_callable(name, test, "test") for name, test in self.tests.items()}
        self.filters[LOOP_GUARD] = loop_guard
        self.filters[BOUNDED] = bounded

    # Parsed templates: every for-loop iterates through the loop guard, and both sides of
    # every comparison are size-checked (comparing two big nested lists runs in C).
    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        self._check_tokens(source, name, filename)
        try:
            tree = super()._parse(source, name, filename)
        except RecursionError:
            raise TemplateSyntaxError(_TOO_DEEP, 0) from None
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Filter(loop.iter, LOOP_GUARD, [], [], None, None, lineno=loop.lineno)
        for compare in tree.find_all(nodes.Compare):
            compare.expr = _wrap(compare.expr)
            for operand in compare.ops:
                operand.expr = _wrap(operand.expr)
        return tree

    def _check_tokens(self, source: str, name: str | None, filename: str | None) -> None:
        """Refuse sources whose parsing or compiling alone would cost too much."""
        depth = 0
        tokens = self.lexer.wrap(self.lexer.tokeniter(source, name, filename), name, filename)
        for count, token in enumerate(tokens):
            if count >= MAX_TOKENS:
                raise TemplateSyntaxError(
                    f"has more than {MAX_TOKENS:,} tags, names and operators; shorten it",
                    token.lineno,
                )
            if token.type in ("lparen", "lbracket", "lbrace"):
                depth += 1
                if depth > MAX_NESTING:
                    raise TemplateSyntaxError(
                        f"brackets are nested more than {MAX_NESTING} deep", token.lineno
                    )
            elif token.type in ("rparen", "rbracket", "rbrace"):
                depth -= 1

    def compile(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().compile(*args, **kwargs)
        except (RecursionError, SyntaxError):
            # SyntaxError: Python's own limits on the generated code ("too many statically
            # nested blocks" past about 20 nested loops, "too many levels of indentation").
            raise TemplateSyntaxError(_TOO_DEEP, 0) from None

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        return binop(operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        check_clock()
        return super().call(__context, __obj, *args, **kwargs)


_TOO_DEEP = "the template nests too deeply (blocks, macros or expressions); simplify it"


def _wrap(expr: nodes.Expr) -> nodes.Expr:
    return nodes.Filter(expr, BOUNDED, [], [], None, None, lineno=expr.lineno)


def dunder_access(tree: nodes.Template) -> tuple[str, int] | None:
    """The first ``__name__``-style attribute the template reads, with its line.

    Covers ``a.__class__``, ``a['__class__']`` and ``a|attr('__class__')``. The sandbox
    refuses these at render anyway; refusing them at save tells the author where.
    """
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Filter)):
        name: Any = None
        if isinstance(node, nodes.Getattr):
            name = node.attr
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            name = node.arg.value
        elif isinstance(node, nodes.Filter) and node.name == "attr" and node.args:
            first = node.args[0]
            name = first.value if isinstance(first, nodes.Const) else None
        if isinstance(name, str) and "__" in name:
            return name, node.lineno
    return None
