"""Segment rule trees: validation, the registry of condition kinds, and SQL compilation.

A rule tree is JSON::

    {"all": [node, ...]}   every node matches
    {"any": [node, ...]}   at least one node matches
    {"not": node}          the node does not match ({"not": [..]} means not all of them)
    {"field": "condition", "op": "eq", "value": "E11"}    a condition

Each condition's ``field`` names a :class:`ConditionKind` in the registry. A kind
validates its operator and value (clear messages, no PHI: values in segment
definitions are criteria, not a person's data) and compiles to a ``Q`` over
``Contact``; the whole tree becomes one ``WHERE`` clause, so a segment is evaluated by
one SQL query over blind-index tokens and plain columns, never row by row in Python.

Extension point: :func:`register` adds a kind (reporting adds "opened campaign X"
kinds this way); :func:`register_resolver` adds a family of fields by prefix (custom
fields are ``custom.<key>``).

Semantics: ``ne`` and ``not_in`` are the complements of ``eq`` and ``in`` — they match
contacts with no value too; multi-valued attributes (conditions, medications) match
``eq``/``in`` when any of their values does. Relative dates use the organization's
current date. ``condition eq E11`` matches every code in category E11 (E11, E11.9,
E11.65 …); ``language eq zh`` matches zh, zh-hant, zh-hant-tw.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from contacts import tokens
from contacts.attributes import (
    PROFILE_ATTRIBUTES,
    ContactValueError,
    CustomFieldDef,
    canonical_number,
    normalize_choice,
    normalize_email,
    normalize_icd10,
    normalize_language,
    parse_date,
    parse_decimal,
)
from contacts.models import (
    Consent,
    ConsentPurpose,
    Contact,
    ContactList,
    ContactStatus,
    ContactTokenSet,
    CustomField,
    CustomFieldKind,
    InsuranceType,
    JourneyStage,
    ListMembership,
    Sex,
    TokenIndexState,
)
from luxmail.crypto import normalize_text

logger = logging.getLogger(__name__)

MAX_DEPTH = 8
MAX_CONDITIONS = 100
MAX_IN_VALUES = 500
MAX_DAYS = 365 * 150
MAX_AGE = 130
EQUALITY_OPS = ("eq", "ne", "in", "not_in", "exists")
DATE_OPS = (
    "eq",
    "ne",
    "gte",
    "lte",
    "between",
    "within_last_days",
    "more_than_days_ago",
    "exists",
)
AGE_OPS = ("eq", "ne", "in", "not_in", "gte", "lte", "between", "exists")
OPERATORS = {
    "eq": "is",
    "ne": "is not",
    "in": "is any of",
    "not_in": "is none of",
    "exists": "is set",
    "gte": "is at least / on or after",
    "lte": "is at most / on or before",
    "between": "is between (inclusive)",
    "within_last_days": "within the last N days",
    "more_than_days_ago": "more than N days ago",
}


class RuleValueError(ValueError):
    """A condition's value is unacceptable; the message is shown to the user."""


@dataclass(frozen=True)
class RuleProblem:
    path: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}


class SegmentRuleError(ValueError):
    """The rule tree is invalid; ``problems`` lists each with its path in the tree."""

    def __init__(self, problems: list[RuleProblem]):
        self.problems = problems
        super().__init__("; ".join(f"{p.path}: {p.message}" for p in problems))


@dataclass(frozen=True)
class Context:
    """Evaluation time: relative conditions (age, within last N days) use ``today``.

    ``coarse_dates``: date and age ranges may use the decade and century tokens (token
    layout 2, :func:`token_layout_current`); without it they are covered by years,
    months and days, which every layout answers exactly.
    """

    today: dt.date
    now: dt.datetime
    coarse_dates: bool = False


Validator = Callable[[str, Any], Any]
Compiler = Callable[[str, Any, Context], Q]


@dataclass(frozen=True)
class ConditionKind:
    """One condition field: which operators it takes, how it validates and compiles."""

    field: str
    label: str
    value_type: str
    ops: tuple[str, ...]
    validate: Validator
    compile: Compiler
    group: str = "Profile"
    phi: bool = True
    choices: tuple[str, ...] = ()
    help: str = ""

    def describe(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "label": self.label,
            "type": self.value_type,
            "ops": list(self.ops),
            "group": self.group,
            "phi": self.phi,
            "choices": list(self.choices),
            "help": self.help,
        }


_REGISTRY: dict[str, ConditionKind] = {}
_RESOLVERS: dict[str, Callable[[str], ConditionKind | None]] = {}


def register(kind: ConditionKind) -> ConditionKind:
    """Add (or replace) a condition kind; returns it for use as a module constant."""
    _REGISTRY[kind.field] = kind
    return kind


def unregister(field_name: str) -> None:
    """Remove a kind added with :func:`register` (tests, plug-ins being unloaded)."""
    _REGISTRY.pop(field_name, None)


def register_resolver(prefix: str, resolver: Callable[[str], ConditionKind | None]) -> None:
    """Resolve fields starting with ``prefix`` (e.g. ``custom.``) at validation time."""
    _RESOLVERS[prefix] = resolver


def kind_for(field_name: str) -> ConditionKind | None:
    if field_name in _REGISTRY:
        return _REGISTRY[field_name]
    for prefix, resolver in _RESOLVERS.items():
        if field_name.startswith(prefix):
            return resolver(field_name)
    return None


def available_kinds() -> list[ConditionKind]:
    """Every field a segment can use now (static kinds plus current custom fields)."""
    found = list(_REGISTRY.values())
    for custom in CustomField.objects.all():
        kind = _custom_kind(CustomFieldDef.of(custom))
        if kind is not None:
            found.append(kind)
    return found


# --- SQL building blocks --------------------------------------------------------------------


def token_q(values: list[int]) -> Q:
    """Contacts holding any of ``values`` (an empty list matches nobody).

    Every token condition tests the same joined ``ContactTokenSet`` row, so PostgreSQL
    answers a whole conjunction with one bitmap scan of the GIN index.
    """
    if not values:
        return Q(pk__in=[])
    return Q(tokenset__tokens__overlaps=values)


def consent_present_q(purpose: str, now: dt.datetime) -> Q:
    """Contacts with a consent for ``purpose`` granted, not revoked and not expired at ``now``."""
    return Q(
        Exists(
            Consent.objects.filter(
                contact_id=OuterRef("pk"),
                purpose=purpose,
                revoked_at__isnull=True,
                granted_at__lte=now,
            ).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        )
    )


def _negate(op: str, q: Q) -> Q:
    return ~q if op in {"ne", "not_in"} else q


# --- value validation helpers ---------------------------------------------------------------


def _as_list(op: str, value: Any, one: Callable[[Any], Any]) -> Any:
    if op in {"in", "not_in"}:
        if not isinstance(value, list) or not value:
            raise RuleValueError("give a non-empty list of values")
        if len(value) > MAX_IN_VALUES:
            raise RuleValueError(f"at most {MAX_IN_VALUES} values")
        cleaned: list[Any] = []
        for item in value:
            normalized = one(item)
            if normalized not in cleaned:
                cleaned.append(normalized)
        return cleaned
    if op == "exists":
        if value is None:
            return True
        if not isinstance(value, bool):
            raise RuleValueError("use true or false")
        return value
    if isinstance(value, list | dict) or value is None:
        raise RuleValueError("give a single value")
    return one(value)


def _unwrap(error: ContactValueError) -> RuleValueError:
    return RuleValueError(error.message.split(": ", 1)[-1])


def _days(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise RuleValueError("give a whole number of days")
    try:
        days = int(value)
    except ValueError:
        raise RuleValueError("give a whole number of days") from None
    if not 0 <= days <= MAX_DAYS:
        raise RuleValueError(f"the number of days must be between 0 and {MAX_DAYS}")
    return days


def _date(value: Any) -> str:
    try:
        return parse_date("date", value).isoformat()
    except ContactValueError as error:
        raise _unwrap(error) from None


def _date_value(op: str, value: Any) -> Any:
    if op == "exists":
        return _as_list(op, value, lambda v: v)
    if op in {"within_last_days", "more_than_days_ago"}:
        return _days(value)
    if op == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise RuleValueError("give two dates: [from, to]")
        lo, hi = _date(value[0]), _date(value[1])
        if lo > hi:
            raise RuleValueError("the first date must not be after the second")
        return [lo, hi]
    if isinstance(value, list | dict) or value is None:
        raise RuleValueError("give a single date (YYYY-MM-DD)")
    return _date(value)


def _date_range(op: str, value: Any, ctx: Context) -> tuple[dt.date, dt.date]:
    day = dt.timedelta(days=1)
    if op == "eq" or op == "ne":
        point = dt.date.fromisoformat(value)
        return point, point
    if op == "gte":
        return dt.date.fromisoformat(value), tokens.DATE_MAX
    if op == "lte":
        return tokens.DATE_MIN, dt.date.fromisoformat(value)
    if op == "between":
        return dt.date.fromisoformat(value[0]), dt.date.fromisoformat(value[1])
    if op == "within_last_days":
        return ctx.today - dt.timedelta(days=value), ctx.today
    if op == "more_than_days_ago":
        return tokens.DATE_MIN, ctx.today - dt.timedelta(days=value) - day
    raise RuleValueError(f"unsupported operator {op}")


def _age(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise RuleValueError("give an age in whole years")
    try:
        age = int(value)
    except ValueError:
        raise RuleValueError("give an age in whole years") from None
    if not 0 <= age <= MAX_AGE:
        raise RuleValueError(f"an age must be between 0 and {MAX_AGE}")
    return age


# --- kinds ------------------------------------------------------------------------------------


def _equality_kind(
    field_name: str,
    label: str,
    token_field: str,
    normalize: Callable[[Any], str],
    *,
    value_type: str = "text",
    choices: tuple[str, ...] = (),
    group: str = "Profile",
    phi: bool = True,
    help_text: str = "",
    exists_field: str | None = None,
) -> ConditionKind:
    def validate(op: str, value: Any) -> Any:
        def one(item: Any) -> str:
            if not isinstance(item, str | int) or isinstance(item, bool):
                raise RuleValueError("give text values")
            try:
                return normalize(item)
            except ContactValueError as error:
                raise _unwrap(error) from None

        return _as_list(op, value, one)

    def compile_(op: str, value: Any, ctx: Context) -> Q:
        if op == "exists":
            q = token_q([tokens.exists_token(exists_field or token_field)])
            return q if value else ~q
        values = value if isinstance(value, list) else [value]
        return _negate(op, token_q([tokens.token(token_field, normalize_text(v)) for v in values]))

    return ConditionKind(
        field=field_name,
        label=label,
        value_type=value_type,
        ops=EQUALITY_OPS,
        validate=validate,
        compile=compile_,
        group=group,
        phi=phi,
        choices=choices,
        help=help_text,
    )


def _date_kind(
    field_name: str, label: str, token_field: str, *, group: str = "Profile", phi: bool = True
) -> ConditionKind:
    def compile_(op: str, value: Any, ctx: Context) -> Q:
        if op == "exists":
            q = token_q([tokens.exists_token(token_field)])
            return q if value else ~q
        lo, hi = _date_range(op, value, ctx)
        found = tokens.date_range_tokens(token_field, lo, hi, coarse=ctx.coarse_dates)
        return _negate(op, token_q(found))

    return ConditionKind(
        field=field_name,
        label=label,
        value_type="date",
        ops=DATE_OPS,
        validate=_date_value,
        compile=compile_,
        group=group,
        phi=phi,
        help="Dates as YYYY-MM-DD; relative operators count days back from today.",
    )


def _age_validate(op: str, value: Any) -> Any:
    if op == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise RuleValueError("give two ages: [from, to]")
        lo, hi = _age(value[0]), _age(value[1])
        if lo > hi:
            raise RuleValueError("the first age must not be greater than the second")
        return [lo, hi]
    if op in {"gte", "lte"}:
        if isinstance(value, list | dict) or value is None:
            raise RuleValueError("give a single age")
        return _age(value)
    return _as_list(op, value, _age)


def _age_compile(op: str, value: Any, ctx: Context) -> Q:
    field_name = PROFILE_ATTRIBUTES["birth_date"].token_field
    if op == "exists":
        q = token_q([tokens.exists_token(field_name)])
        return q if value else ~q
    if op == "gte":
        ranges = [tokens.age_range(value, None, ctx.today)]
    elif op == "lte":
        ranges = [tokens.age_range(None, value, ctx.today)]
    elif op == "between":
        ranges = [tokens.age_range(value[0], value[1], ctx.today)]
    else:
        ages = value if isinstance(value, list) else [value]
        ranges = [tokens.age_range(age, age, ctx.today) for age in ages]
    found: list[int] = []
    for lo, hi in ranges:
        found += tokens.date_range_tokens(field_name, lo, hi, coarse=ctx.coarse_dates)
    return _negate(op, token_q(found))


def _icd10(value: Any) -> str:
    return normalize_icd10("condition", value)


def _zip(length: int) -> Callable[[Any], str]:
    def normalize(value: Any) -> str:
        text = str(value).strip()
        if not re.fullmatch(rf"\d{{{length}}}", text):
            raise ContactValueError("zip", f"zip: use exactly {length} digits")
        return text

    return normalize


def _plain_text(limit: int = 200) -> Callable[[Any], str]:
    def normalize(value: Any) -> str:
        text = normalize_text(str(value))
        if not text or len(text) > limit:
            raise ContactValueError("text", f"text: give 1 to {limit} characters")
        return text

    return normalize


def _choice(field_name: str, choices: tuple[str, ...]) -> Callable[[Any], str]:
    return lambda value: normalize_choice(field_name, value, choices)


register(
    ConditionKind(
        field="age",
        label="Age",
        value_type="age",
        ops=AGE_OPS,
        validate=_age_validate,
        compile=_age_compile,
        help="Age in whole years today, from the date of birth.",
    )
)
register(_date_kind("birth_date", "Date of birth", "birth_date"))
register(
    _equality_kind(
        "sex",
        "Sex",
        "sex",
        _choice("sex", tuple(Sex.values)),
        value_type="choice",
        choices=tuple(Sex.values),
    )
)
register(
    _equality_kind(
        "language",
        "Preferred language",
        "language",
        normalize_language,
        help_text="Language code; 'zh' also matches 'zh-hant'.",
    )
)
register(_equality_kind("zip", "ZIP code (5 digits)", "zip5", _zip(5), exists_field="zip"))
register(_equality_kind("zip3", "ZIP area (first 3 digits)", "zip3", _zip(3), exists_field="zip"))
register(
    _equality_kind(
        "condition",
        "Condition (ICD-10)",
        "condition",
        _icd10,
        value_type="code",
        help_text="An ICD-10 code or category: E11 matches E11.9 and E11.65.",
    )
)
register(_equality_kind("medication", "Medication", "medication", _plain_text()))
register(
    _equality_kind(
        "insurance_type",
        "Insurance type",
        "insurance_type",
        _choice("insurance_type", tuple(InsuranceType.values)),
        value_type="choice",
        choices=tuple(InsuranceType.values),
    )
)
register(_equality_kind("insurance_plan", "Insurance plan", "insurance_plan", _plain_text()))
register(_equality_kind("primary_provider", "Primary provider", "provider", _plain_text()))
register(_date_kind("last_visit", "Last visit", "last_visit"))
register(_date_kind("next_appointment", "Next appointment", "next_appointment"))
register(
    _equality_kind(
        "journey_stage",
        "Care-journey stage",
        "journey_stage",
        _choice("journey_stage", tuple(JourneyStage.values)),
        value_type="choice",
        choices=tuple(JourneyStage.values),
    )
)


# Plain-column kinds (not PHI).


def _status_validate(op: str, value: Any) -> Any:
    def one(item: Any) -> str:
        try:
            return normalize_choice("status", item, tuple(ContactStatus.values))
        except ContactValueError as error:
            raise _unwrap(error) from None

    return _as_list(op, value, one)


def _status_compile(op: str, value: Any, ctx: Context) -> Q:
    values = value if isinstance(value, list) else [value]
    return _negate(op, Q(status__in=values))


register(
    ConditionKind(
        field="status",
        label="Delivery status",
        value_type="choice",
        ops=("eq", "ne", "in", "not_in"),
        validate=_status_validate,
        compile=_status_compile,
        group="Contact",
        phi=False,
        choices=tuple(ContactStatus.values),
    )
)


def _domain(value: Any) -> str:
    try:
        _, domain = normalize_email(f"x@{str(value).strip().lstrip('@')}")
    except ContactValueError:
        raise RuleValueError("not a valid domain name") from None
    return domain


def _domain_validate(op: str, value: Any) -> Any:
    return _as_list(op, value, _domain)


def _domain_compile(op: str, value: Any, ctx: Context) -> Q:
    values = value if isinstance(value, list) else [value]
    return _negate(op, Q(domain__in=values))


register(
    ConditionKind(
        field="email_domain",
        label="Email domain",
        value_type="text",
        ops=("eq", "ne", "in", "not_in"),
        validate=_domain_validate,
        compile=_domain_compile,
        group="Contact",
        phi=False,
    )
)


def _created_compile(op: str, value: Any, ctx: Context) -> Q:
    lo, hi = _date_range(op, value, ctx)
    return _negate(op, Q(created_at__date__gte=lo, created_at__date__lte=hi))


register(
    ConditionKind(
        field="created",
        label="Added on",
        value_type="date",
        ops=tuple(op for op in DATE_OPS if op != "exists"),
        validate=_date_value,
        compile=_created_compile,
        group="Contact",
        phi=False,
    )
)


def _list_validate(op: str, value: Any) -> Any:
    def one(item: Any) -> int:
        if isinstance(item, bool) or not isinstance(item, int | str):
            raise RuleValueError("give list ids")
        try:
            pk = int(item)
        except ValueError:
            raise RuleValueError("give list ids") from None
        if not ContactList.objects.filter(pk=pk).exists():
            raise RuleValueError(f"there is no list with id {pk}")
        return pk

    return _as_list(op, value, one)


def _list_compile(op: str, value: Any, ctx: Context) -> Q:
    values = value if isinstance(value, list) else [value]
    q = Q(pk__in=ListMembership.objects.filter(contact_list_id__in=values).values("contact_id"))
    return _negate(op, q)


register(
    ConditionKind(
        field="list",
        label="Member of list",
        value_type="list",
        ops=("eq", "ne", "in", "not_in"),
        validate=_list_validate,
        compile=_list_compile,
        group="Contact",
        phi=False,
    )
)


def _consent_validate(op: str, value: Any) -> Any:
    def one(item: Any) -> str:
        if item not in ConsentPurpose.values:
            raise RuleValueError(f"purpose must be one of {', '.join(ConsentPurpose.values)}")
        return str(item)

    return _as_list(op, value, one)


def _consent_compile(op: str, value: Any, ctx: Context) -> Q:
    return _negate(op, consent_present_q(value, ctx.now))


register(
    ConditionKind(
        field="consent",
        label="Consent present",
        value_type="choice",
        ops=("eq", "ne"),
        validate=_consent_validate,
        compile=_consent_compile,
        group="Contact",
        phi=False,
        choices=tuple(ConsentPurpose.values),
        help="Granted, not revoked and not expired right now.",
    )
)


# Custom fields: resolved per key from the current definitions.


def _custom_kind(definition: CustomFieldDef) -> ConditionKind | None:
    field_name = f"custom.{definition.key}"
    group = "Custom fields"
    if definition.kind == CustomFieldKind.DATE:
        return _date_kind(
            field_name, definition.label, definition.token_field, group=group, phi=definition.phi
        )

    def normalize(value: Any) -> str:
        if definition.kind == CustomFieldKind.NUMBER:
            return canonical_number(parse_decimal(field_name, value))
        if definition.kind == CustomFieldKind.CHOICE:
            return normalize_choice(field_name, value, definition.choices)
        return _plain_text()(value)

    return _equality_kind(
        field_name,
        definition.label,
        definition.token_field,
        normalize,
        value_type="choice" if definition.kind == CustomFieldKind.CHOICE else definition.kind,
        choices=definition.choices,
        group=group,
        phi=definition.phi,
    )


def _resolve_custom(field_name: str) -> ConditionKind | None:
    custom = CustomField.objects.filter(key=field_name.removeprefix("custom.")).first()
    return _custom_kind(CustomFieldDef.of(custom)) if custom else None


register_resolver("custom.", _resolve_custom)


# --- validation -------------------------------------------------------------------------------


@dataclass
class _Walk:
    problems: list[RuleProblem] = field(default_factory=list)
    conditions: int = 0
    kinds: dict[str, ConditionKind] = field(default_factory=dict)

    def problem(self, path: str, message: str) -> None:
        self.problems.append(RuleProblem(path or "rules", message))


def _known_fields() -> str:
    return ", ".join(sorted(_REGISTRY)) + ", custom.<key>"


def _clean(node: Any, path: str, depth: int, walk: _Walk) -> Any:
    if depth > MAX_DEPTH:
        walk.problem(path, f"groups are nested more than {MAX_DEPTH} deep")
        return None
    if not isinstance(node, dict):
        walk.problem(path, 'expected a group ({"all": [...]}) or a condition object')
        return None
    groups = [key for key in ("all", "any", "not") if key in node]
    if groups:
        if len(node) != 1:
            walk.problem(path, "a group has exactly one key: all, any or not")
            return None
        key = groups[0]
        children = node[key]
        if key == "not" and isinstance(children, dict):
            cleaned = _clean(children, f"{path}.not" if path else "not", depth + 1, walk)
            return {"not": cleaned}
        if not isinstance(children, list):
            walk.problem(path, f"'{key}' takes a list of conditions or groups")
            return None
        if not children:
            walk.problem(path, f"the '{key}' group is empty; add a condition or remove it")
            return None
        prefix = f"{path}.{key}" if path else key
        return {
            key: [
                _clean(child, f"{prefix}[{i}]", depth + 1, walk) for i, child in enumerate(children)
            ]
        }
    walk.conditions += 1
    if walk.conditions > MAX_CONDITIONS:
        if walk.conditions == MAX_CONDITIONS + 1:
            walk.problem(path, f"a segment may have at most {MAX_CONDITIONS} conditions")
        return None
    unknown_keys = set(node) - {"field", "op", "value"}
    if unknown_keys:
        walk.problem(path, f"unexpected key '{sorted(unknown_keys)[0]}' in a condition")
        return None
    field_name = node.get("field")
    op = node.get("op")
    if not isinstance(field_name, str) or not field_name:
        walk.problem(path, "a condition needs a 'field'")
        return None
    kind = kind_for(field_name)
    if kind is None:
        walk.problem(path, f"unknown field '{field_name[:60]}'; known fields: {_known_fields()}")
        return None
    if op not in kind.ops:
        shown = op if isinstance(op, str) else "(none)"
        walk.problem(
            path,
            f"operator '{shown[:30]}' does not apply to {kind.label.lower()} ({kind.value_type}); "
            f"use one of {', '.join(kind.ops)}",
        )
        return None
    if op != "exists" and "value" not in node:
        walk.problem(path, f"{kind.label}: '{op}' needs a value")
        return None
    try:
        value = kind.validate(op, node.get("value"))
    except RuleValueError as error:
        walk.problem(path, f"{kind.label}: {error}")
        return None
    walk.kinds[field_name] = kind
    return {"field": field_name, "op": op, "value": value}


def validate(rules: Any) -> dict[str, Any]:
    """The cleaned rule tree (normalized values); raises :class:`SegmentRuleError`.

    Every problem is reported with its path (``all[1].any[0]``): unknown fields,
    operators that do not fit the field's type, out-of-range or malformed values,
    empty groups, too deep or too large trees.
    """
    walk = _Walk()
    if isinstance(rules, dict) and "field" in rules:
        rules = {"all": [rules]}
    cleaned = _clean(rules, "", 0, walk)
    if walk.problems:
        raise SegmentRuleError(walk.problems)
    assert isinstance(cleaned, dict)
    return cleaned


# --- compilation ------------------------------------------------------------------------------


_layout = {"current": False, "warned": False}


def token_layout() -> int:
    """The token layout every stored token set has (``TokenIndexState``; 1 if unknown)."""
    state = TokenIndexState.objects.filter(pk=1).values_list("version", flat=True).first()
    return state or 1


def forget_token_layout() -> None:
    """Read the layout from the database again (after it was set back, in tests)."""
    _layout.update(current=False, warned=False)


def token_layout_current() -> bool:
    """Whether every token set carries the current layout's tokens (decade, century).

    Until ``manage.py contacts_reindex`` has run after an upgrade, segments are compiled
    without the coarse date levels: exact on old and new token sets alike, only slower.
    Once current, the answer is kept for the process (layouts only move forward), so a
    count stays one query.
    """
    if _layout["current"]:
        return True
    layout = token_layout()
    if layout >= tokens.TOKEN_VERSION:
        _layout["current"] = True
        return True
    if not _layout["warned"]:
        _layout["warned"] = True
        logger.warning(
            "contact tokens are layout %s, the code writes layout %s: segments use "
            "year/month/day date tokens until `manage.py contacts_reindex` has run",
            layout,
            tokens.TOKEN_VERSION,
        )
    return False


def context(today: dt.date | None = None) -> Context:
    now = timezone.now()
    return Context(
        today=today or timezone.localdate(now), now=now, coarse_dates=token_layout_current()
    )


def compile_rules(rules: Any, ctx: Context) -> Q:
    """The ``Q`` of a rule tree (validated first)."""
    return _compile(validate(rules), ctx)


def _token_weight(q: Q) -> int:
    """How many tokens the positive token conditions of ``q`` OR together."""
    weight = 0
    for child in q.children:
        if isinstance(child, Q):
            weight += _token_weight(child)
        elif isinstance(child, tuple) and str(child[0]).endswith("tokens__overlaps"):
            weight += len(child[1])
    return weight


def _compile(node: dict[str, Any], ctx: Context) -> Q:
    if "all" in node:
        # Fewest tokens first: PostgreSQL hands the conditions to the GIN scan in this
        # order, and the scan tests each candidate row against the conditions in turn,
        # OR-ing all tokens of a condition each time. A broad range (age >= 50: ~30
        # tokens, 45 % of contacts) last is consulted only for rows the narrow ones
        # left (issue 16 §3).
        parts = sorted((_compile(child, ctx) for child in node["all"]), key=_token_weight)
        q = Q()
        for part in parts:
            q &= part
        return q
    if "any" in node:
        q = _compile(node["any"][0], ctx)
        for child in node["any"][1:]:
            q |= _compile(child, ctx)
        return q
    if "not" in node:
        inner = node["not"]
        return ~_compile(inner if isinstance(inner, dict) else {"all": inner}, ctx)
    kind = kind_for(node["field"])
    assert kind is not None
    return kind.compile(node["op"], node["value"], ctx)


def matching(rules: Any, *, today: dt.date | None = None) -> QuerySet[Contact]:
    """Every contact matching ``rules`` as one lazily evaluated query."""
    return Contact.objects.filter(compile_rules(rules, context(today))).order_by()


_TOKEN_PREFIX = "tokenset__"  # noqa: S105 - an ORM lookup path, not a secret


def _on_token_sets(q: Q) -> Q | None:
    """``q`` rewritten against ``ContactTokenSet`` if it only tests tokens positively.

    Such a tree can only match contacts that have a token set, so counting token sets
    is exact and saves joining the contacts table (a third of the time on 1 M rows).
    Negations and plain-column conditions return None.
    """
    if q.negated:
        return None
    children: list[Any] = []
    for child in q.children:
        if isinstance(child, Q):
            rebased = _on_token_sets(child)
            if rebased is None:
                return None
            children.append(rebased)
        elif isinstance(child, tuple) and str(child[0]).startswith(_TOKEN_PREFIX):
            children.append((child[0].removeprefix(_TOKEN_PREFIX), child[1]))
        else:
            return None
    return Q(*children, _connector=q.connector)


def count(rules: Any, *, today: dt.date | None = None) -> int:
    """How many contacts match ``rules`` (one SQL query)."""
    q = compile_rules(rules, context(today))
    on_tokens = _on_token_sets(q)
    if on_tokens is not None and q.children:
        return ContactTokenSet.objects.filter(on_tokens).count()
    return Contact.objects.filter(q).count()


# --- inspection -------------------------------------------------------------------------------


def conditions(rules: Any) -> Iterator[dict[str, Any]]:
    if isinstance(rules, dict):
        if "field" in rules:
            yield rules
        for key in ("all", "any", "not"):
            child = rules.get(key)
            if isinstance(child, list):
                for item in child:
                    yield from conditions(item)
            elif isinstance(child, dict):
                yield from conditions(child)


def condition_count(rules: Any) -> int:
    return sum(1 for _ in conditions(rules))


def fields_used(rules: Any) -> set[str]:
    return {str(c.get("field")) for c in conditions(rules)}


def list_ids(rules: Any) -> set[int]:
    found: set[int] = set()
    for condition in conditions(rules):
        if condition.get("field") == "list":
            value = condition.get("value")
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, int):
                    found.add(item)
    return found
