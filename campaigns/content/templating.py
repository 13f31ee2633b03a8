"""Sandboxed Jinja2 templates for campaign mail (DESIGN.md §4 "Templates").

What the sandbox guarantees, and how:

* **No Python object model.** The context is plain dicts, lists, strings and numbers.
  Attribute access (``a.b``) is a dictionary lookup and nothing else: ``''.__class__``,
  ``contact.email.upper`` or ``contact.items`` are refused with a :class:`RenderError`
  that says so. Only the template's own macros and the helpers registered here may be
  called; the ``attr`` filter and every filter that takes an unbounded width or format
  string are not installed.
* **Bounded work.** Time, memory, value sizes, loop iterations and output are bounded
  inside the sandbox itself, before each operation that could grow a value or run
  long: see :mod:`campaigns.content.sandbox` for the limits and how each is enforced.
* **Escaping.** HTML templates autoescape; ``safe`` is not installed, so a contact's
  ``<b>`` always arrives as ``&lt;b&gt;``. Text parts and subjects are not escaped.
* **StrictUndefined.** A missing value is an error, never an empty string.

Validation on save (:func:`validate`) reports syntax errors with their line number,
references to names outside the schema (:func:`template_schema`), and oversize
sources. A template that reads any ``phi.*`` name is PHI-bearing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.exceptions import SecurityError, TemplateSyntaxError, UndefinedError
from jinja2.runtime import LoopContext

from campaigns.content import sandbox, splice
from campaigns.content.sandbox import DEFAULT_TIME_LIMIT, MAX_OUTPUT_CHARS

MAX_SOURCE_BYTES = 256 * 1024

TOP_LEVEL_NAMES = ("contact", "phi", "org", "unsubscribe_url", "preferences_url")

# Names a template may use. ``contacts`` owns the model (``contacts.models.Contact`` and
# ``ContactProfile``); ``campaigns.content.context`` fills exactly these keys. ``contact.*``
# holds the address and name, ``phi.*`` the PHI profile: any ``phi.*`` use makes the
# template PHI-bearing (sendable only under a secure-delivery policy).
CONTACT_FIELDS = (
    "email",
    "first_name",
    "last_name",
    "full_name",
    "domain",
    "external_id",
    "time_zone",
    "custom",
)
PHI_FIELDS = (
    "birth_date",
    "birth_year",
    "age",
    "sex",
    "language",
    "zip_code",
    "phone",
    "conditions",
    "medications",
    "insurance_type",
    "insurance_plan",
    "primary_provider",
    "last_visit",
    "next_appointment",
    "journey_stage",
    "custom",
)
ORG_FIELDS = ("name", "postal_address", "footer_text")

ALLOWED_FILTERS = (
    "abs",
    "capitalize",
    "count",
    "d",
    "default",
    "e",
    "escape",
    "first",
    "float",
    "int",
    "join",
    "last",
    "length",
    "list",
    "lower",
    "max",
    "min",
    "replace",
    "reverse",
    "round",
    "sort",
    "string",
    "striptags",
    "sum",
    "title",
    "trim",
    "truncate",
    "unique",
    "upper",
    "urlencode",
    "wordcount",
    "batch",
    "slice",
)
_LOOP_ATTRIBUTES = frozenset(
    {"index", "index0", "revindex", "revindex0", "first", "last", "length", "depth", "depth0"}
)


def is_blank(value: Any) -> bool:
    """No usable value: undefined, None, empty or whitespace-only text, an empty list."""
    if isinstance(value, jinja2.Undefined) or value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, list | tuple | dict | set):
        return not value
    return False


class TemplateError(Exception):
    """A template problem the author can fix; ``str()`` is a readable sentence."""

    def __init__(self, message: str, *, lineno: int | None = None, part: str = ""):
        self.message = message
        self.lineno = lineno
        self.part = part
        where = f"{part} " if part else ""
        prefix = f"{where}line {lineno}: " if lineno else (f"{part}: " if part else "")
        super().__init__(prefix + message)


class TemplateValidationError(TemplateError):
    """Raised by :func:`validate`."""


class RenderError(TemplateError):
    """Rendering was refused or failed (sandbox violation, limit, missing value)."""


@dataclass(frozen=True)
class Schema:
    contact: tuple[str, ...] = CONTACT_FIELDS
    phi: tuple[str, ...] = PHI_FIELDS
    org: tuple[str, ...] = ORG_FIELDS

    def fields(self, name: str) -> tuple[str, ...] | None:
        return {"contact": self.contact, "phi": self.phi, "org": self.org}.get(name)


def template_schema() -> Schema:
    """The names templates may use: the contact, PHI and organization fields."""
    return Schema()


def _default_if_blank(value: Any, default_value: Any = "", boolean: bool = False) -> Any:
    return default_value if is_blank(value) else value


def _has_value(value: Any) -> bool:
    return not is_blank(value)


class LuxMailSandbox(sandbox.BoundedSandbox):
    """The sandbox: dictionary-only attribute access, allow-listed calls and filters."""

    def __init__(self, *, autoescape: bool):
        super().__init__(
            autoescape=autoescape,
            undefined=jinja2.StrictUndefined,
            auto_reload=False,
            cache_size=0,
            keep_trailing_newline=True,
        )
        self.filters = {name: self.filters[name] for name in ALLOWED_FILTERS}
        self.tests = {
            name: self.tests[name]
            for name in (
                "defined",
                "undefined",
                "none",
                "number",
                "string",
                "even",
                "odd",
                "divisibleby",
                "eq",
                "ne",
                "lt",
                "le",
                "gt",
                "ge",
                "in",
                "true",
                "false",
            )
        }
        # A blank value (no appointment on file) counts as missing for the guards a
        # template can give, so "default" really fills the hole (campaigns/content/fields.py).
        self.filters["default"] = self.filters["d"] = _default_if_blank
        self.tests["defined"] = _has_value
        self.tests["undefined"] = is_blank
        self.bound_filters_and_tests()
        self.globals = {"range": sandbox.capped_range}
        self._callables = {id(sandbox.capped_range)}

    def getattr(self, obj: Any, attribute: str) -> Any:
        return self._lookup(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(argument, str):
            return self._lookup(obj, argument)
        if isinstance(obj, str | list | tuple) and isinstance(argument, int | slice):
            try:
                value = obj[argument]
            except IndexError:
                return self.undefined(obj=obj, name=str(argument))
            if isinstance(argument, slice):  # no bigger than obj, but a new value
                sandbox.charge(len(value))
            return value
        raise SecurityError(f"cannot index a {_kind(obj)} with a {_kind(argument)}")

    def _lookup(self, obj: Any, name: str) -> Any:
        if isinstance(obj, Mapping):
            if name in obj:
                return obj[name]
            return self.undefined(obj=obj, name=name)
        if isinstance(obj, jinja2.Undefined):
            return self.undefined(obj=obj, name=name)
        if isinstance(obj, LoopContext) and name in _LOOP_ATTRIBUTES:
            return getattr(obj, name)
        raise SecurityError(
            f"'{name}' cannot be read from a {_kind(obj)}: templates may only read "
            "fields such as contact.first_name, and may not call methods"
        )

    def is_safe_callable(self, obj: Any) -> bool:
        return isinstance(obj, jinja2.runtime.Macro) or id(obj) in self._callables

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        sandbox.check_clock()
        if not __self.is_safe_callable(__obj):
            raise SecurityError(
                "calling functions or methods is not allowed in templates "
                "(only range() and the template's own macros)"
            )
        return __context.call(__obj, *args, **kwargs)


def _kind(obj: Any) -> str:
    if isinstance(obj, str):
        return "text value"
    if isinstance(obj, bool):
        return "yes/no value"
    if isinstance(obj, int | float):
        return "number"
    if isinstance(obj, list | tuple):
        return "list"
    return "value of this type"


HTML_ENV = LuxMailSandbox(autoescape=True)
TEXT_ENV = LuxMailSandbox(autoescape=False)


# --- validation ---------------------------------------------------------------------------


@dataclass
class Analysis:
    """What :func:`validate` learned about a source."""

    names: set[str] = field(default_factory=set)
    fields: set[tuple[str, str]] = field(default_factory=set)

    @property
    def phi_bearing(self) -> bool:
        return "phi" in self.names

    @property
    def uses_unsubscribe(self) -> bool:
        return "unsubscribe_url" in self.names


def _parse(env: LuxMailSandbox, source: str, part: str) -> nodes.Template:
    if len(source.encode()) > MAX_SOURCE_BYTES:
        raise TemplateValidationError(
            f"is {len(source.encode()):,} bytes; the limit is {MAX_SOURCE_BYTES:,}", part=part
        )
    try:
        return env.parse(source)
    except TemplateSyntaxError as error:
        raise TemplateValidationError(
            error.message or "syntax error", lineno=error.lineno, part=part
        ) from None


def analyze(source: str, *, part: str, html: bool, schema: Schema | None = None) -> Analysis:
    """Parse ``source`` and check every name against the schema; raise on the first problem."""
    schema = schema or template_schema()
    env = HTML_ENV if html else TEXT_ENV
    tree = _parse(env, source, part)
    dunder = sandbox.dunder_access(tree)
    if dunder is not None:
        raise TemplateValidationError(
            f"'{dunder[0]}' is an internal attribute; templates may only read fields such as "
            "contact.first_name",
            lineno=dunder[1],
            part=part,
        )
    try:
        env.compile(tree)  # unknown filters and tests surface at compile time
    except TemplateSyntaxError as error:
        raise TemplateValidationError(
            error.message or "syntax error", lineno=error.lineno, part=part
        ) from None
    local_names = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")} | {
        m.name for m in tree.find_all(nodes.Macro)
    }
    result = Analysis()
    for name_node in tree.find_all(nodes.Name):
        if name_node.ctx != "load" or name_node.name in local_names:
            continue
        if name_node.name in ("range", "loop", "caller", "varargs", "kwargs"):
            continue
        if name_node.name not in TOP_LEVEL_NAMES:
            raise TemplateValidationError(
                f"unknown variable '{name_node.name}'; use one of "
                + ", ".join(f"{n}.…" if schema.fields(n) else n for n in TOP_LEVEL_NAMES),
                lineno=name_node.lineno,
                part=part,
            )
        result.names.add(name_node.name)
    for access in tree.find_all((nodes.Getattr, nodes.Getitem)):
        assert isinstance(access, nodes.Getattr | nodes.Getitem)
        base = access.node
        if not isinstance(base, nodes.Name) or base.name in local_names:
            continue
        allowed = schema.fields(base.name)
        if allowed is None:
            continue
        if isinstance(access, nodes.Getattr):
            attr = access.attr
        elif isinstance(access.arg, nodes.Const) and isinstance(access.arg.value, str):
            attr = access.arg.value
        else:
            continue
        if attr not in allowed:
            raise TemplateValidationError(
                f"unknown field '{base.name}.{attr}'; {base.name} has: " + ", ".join(allowed),
                lineno=access.lineno,
                part=part,
            )
        result.fields.add((base.name, attr))
    return result


@dataclass
class Validated:
    phi_bearing: bool
    uses_unsubscribe: bool
    fields: set[tuple[str, str]]


def validate(*, subject: str, html: str, text: str = "") -> Validated:
    """Validate the three parts of a template; raise :class:`TemplateValidationError`."""
    schema = template_schema()
    if not subject.strip():
        raise TemplateValidationError("must not be empty", part="subject")
    if "\n" in subject.strip() or "\r" in subject:
        raise TemplateValidationError("must be a single line", part="subject")
    if not html.strip():
        raise TemplateValidationError("must not be empty", part="HTML body")
    parts = [
        analyze(subject, part="subject", html=False, schema=schema),
        analyze(html, part="HTML body", html=True, schema=schema),
    ]
    if text.strip():
        parts.append(analyze(text, part="text body", html=False, schema=schema))
    fields_used: set[tuple[str, str]] = set()
    for part in parts:
        fields_used |= part.fields
    return Validated(
        phi_bearing=any(p.phi_bearing for p in parts),
        uses_unsubscribe=parts[1].uses_unsubscribe,
        fields=fields_used,
    )


# --- compiled, renderable templates ------------------------------------------------------


def _stream(template: jinja2.Template, context: dict[str, Any], limit: int) -> str:
    chunks: list[str] = []
    size = 0
    for count, chunk in enumerate(template.generate(context)):
        if count % 16 == 0:  # every operation that can take long checks the clock too
            sandbox.check_clock()
        size += len(chunk)
        if size > limit:
            raise RenderError(f"the rendered message exceeds {limit:,} characters")
        chunks.append(chunk)
    return "".join(chunks)


@dataclass
class Rendered:
    subject: str
    html: str
    text: str
    # The HTML came from the ``html_part`` given to CompiledTemplate.render (with its
    # marks), not from the template's own.
    html_from_part: bool = False


class CompiledTemplate:
    """The three parts compiled once (per campaign), rendered per recipient."""

    def __init__(self, *, subject: str, html: str, text: str):
        self._subject = self._compile(TEXT_ENV, subject, "subject")
        self._html = self._compile(HTML_ENV, html, "HTML body")
        self._text = self._compile(TEXT_ENV, text, "text body")
        # A part without any Jinja delimiter renders to its source (trailing newline
        # kept): most text parts and many subjects; they are not rendered per message.
        self._constant = {
            part: source
            for part, source in (("subject", subject), ("html", html), ("text", text))
            if "{" not in source and len(source) <= MAX_OUTPUT_CHARS
        }
        # Parts that only print fields are rendered by splicing (campaigns/content/splice.py).
        self._spliced = {
            part: splice.compile_part(env.parse(source), html=env is HTML_ENV)
            for part, env, source in (
                ("subject", TEXT_ENV, subject),
                ("html", HTML_ENV, html),
                ("text", TEXT_ENV, text),
            )
            if part not in self._constant
        }

    @staticmethod
    def _compile(env: LuxMailSandbox, source: str, part: str) -> jinja2.Template:
        try:
            return env.from_string(source)
        except TemplateSyntaxError as error:
            raise TemplateValidationError(
                error.message or "syntax error", lineno=error.lineno, part=part
            ) from None

    def html_part(self) -> splice.SplicedPart | None:
        """The HTML part as static text and slots, when it renders by splicing (a
        constant part is one piece of static text); None when it needs Jinja."""
        if "html" in self._constant:
            return splice.SplicedPart([self._constant["html"]], html=True)
        return self._spliced.get("html")

    def render(
        self,
        context: dict[str, Any],
        *,
        time_limit: float = DEFAULT_TIME_LIMIT,
        html_part: splice.SplicedPart | None = None,
        marks: dict[Any, Any] | None = None,
    ) -> Rendered:
        """``html_part`` (a copy of :meth:`html_part` with marks, and their ``marks``)
        renders the HTML instead of the template's own when it can splice; whether it
        did is ``Rendered.html_from_part``."""
        constant = self._constant
        subject = constant.get("subject") or self._splice("subject", context)
        from_part = False
        if html_part is not None:
            html = html_part.render(context, marks)
            from_part = html is not None
        else:
            html = constant.get("html") or self._splice("html", context)
        text = constant.get("text")
        if text is None:
            text = self._splice("text", context)
        if subject is not None and html is not None and text is not None:
            return Rendered(subject=subject, html=html, text=text, html_from_part=from_part)
        # Some part needs Jinja: every part goes through it, under one budget, exactly
        # as before splicing existed (a spliced part's values count against the budget).
        with sandbox.limits(time_limit):  # one budget for the whole message
            return Rendered(
                subject=constant["subject"]
                if "subject" in constant
                else _render_part(self._subject, context, "subject", time_limit),
                html=constant["html"]
                if "html" in constant
                else _render_part(self._html, context, "HTML body", time_limit),
                text=constant["text"]
                if "text" in constant
                else _render_part(self._text, context, "text body", time_limit),
            )

    def _splice(self, part: str, context: dict[str, Any]) -> str | None:
        spliced = self._spliced.get(part)
        return spliced.render(context) if spliced is not None else None


def _render_part(
    template: jinja2.Template, context: dict[str, Any], part: str, time_limit: float
) -> str:
    try:
        with sandbox.limits(time_limit):
            return _stream(template, context, MAX_OUTPUT_CHARS)
    except sandbox.LimitExceeded as error:
        raise RenderError(str(error), part=part) from None
    except MemoryError:  # a backstop: the limits above should make this unreachable
        raise RenderError(
            "the template needs more memory than a message may use", part=part
        ) from None
    except RenderError as error:
        raise RenderError(error.message, part=part) from None
    except SecurityError as error:
        raise RenderError(f"not allowed: {error}", part=part) from None
    except UndefinedError as error:
        raise RenderError(f"missing value: {error}", part=part) from None
    except RecursionError:
        raise RenderError("macros call themselves too deeply", part=part) from None
    except (TypeError, ValueError, ArithmeticError) as error:
        # Python's messages may quote the values involved (contact data, possibly PHI),
        # so only the kind of error is reported.
        raise RenderError(
            f"an expression failed ({type(error).__name__}); check the types of the values "
            "it combines",
            part=part,
        ) from None


def render_string(source: str, context: dict[str, Any], *, html: bool) -> str:
    """Render one source (used by previews and tests)."""
    env = HTML_ENV if html else TEXT_ENV
    template = CompiledTemplate._compile(env, source, "HTML body" if html else "text")
    return _render_part(template, context, "HTML body" if html else "text", DEFAULT_TIME_LIMIT)
