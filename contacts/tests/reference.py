"""A plain-Python evaluation of segment rules, written independently of the SQL compiler.

The property tests compare ``segments.matching`` (tokens + SQL) with this on randomized
contacts. It works on the plaintext values the test itself created, so a mismatch is a
bug in normalization, tokens, range covering or compilation.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from dataclasses import dataclass, field
from typing import Any


def norm(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


@dataclass
class Person:
    """What the test knows about one contact, in plaintext."""

    pk: int
    status: str = "active"
    domain: str = "example.org"
    created: dt.date | None = None
    lists: set[int] = field(default_factory=set)
    consents: set[str] = field(default_factory=set)  # purposes present now
    profile: dict[str, Any] = field(default_factory=dict)
    custom: dict[str, Any] = field(default_factory=dict)


def age(birth: dt.date, today: dt.date) -> int:
    years = today.year - birth.year
    if (today.month, today.day) < (birth.month, birth.day):
        years -= 1
    return years


def _code_matches(code: str, wanted: str) -> bool:
    return code.replace(".", "").startswith(wanted.replace(".", ""))


def _lang_matches(code: str, wanted: str) -> bool:
    return code == wanted or code.startswith(wanted + "-")


def _equality(values: list[Any], op: str, value: Any, same) -> bool:
    if op == "exists":
        return bool(values) == bool(value)
    wanted = value if isinstance(value, list) else [value]
    hit = any(same(v, w) for v in values for w in wanted)
    return not hit if op in {"ne", "not_in"} else hit


def _date(d: dt.date | None, op: str, value: Any, today: dt.date) -> bool:
    if op == "exists":
        return (d is not None) == bool(value)
    if op == "ne":
        return d is None or d != dt.date.fromisoformat(value)
    if d is None:
        return False
    if op == "eq":
        return d == dt.date.fromisoformat(value)
    if op == "gte":
        return d >= dt.date.fromisoformat(value)
    if op == "lte":
        return d <= dt.date.fromisoformat(value)
    if op == "between":
        return dt.date.fromisoformat(value[0]) <= d <= dt.date.fromisoformat(value[1])
    if op == "within_last_days":
        return today - dt.timedelta(days=value) <= d <= today
    if op == "more_than_days_ago":
        return d < today - dt.timedelta(days=value)
    raise AssertionError(op)


def _age(birth: dt.date | None, op: str, value: Any, today: dt.date) -> bool:
    if op == "exists":
        return (birth is not None) == bool(value)
    years = age(birth, today) if birth else None
    if op in {"ne", "not_in"}:
        wanted = value if isinstance(value, list) else [value]
        return years is None or years not in wanted
    if years is None:
        return False
    if op == "eq":
        return years == value
    if op == "in":
        return years in value
    if op == "gte":
        return years >= value
    if op == "lte":
        return years <= value
    if op == "between":
        return value[0] <= years <= value[1]
    raise AssertionError(op)


TEXT_FIELDS = {
    "sex": "sex",
    "insurance_type": "insurance_type",
    "insurance_plan": "insurance_plan",
    "primary_provider": "primary_provider",
    "journey_stage": "journey_stage",
}
DATE_FIELDS = {"birth_date", "last_visit", "next_appointment"}


def evaluate(node: dict[str, Any], p: Person, today: dt.date, custom_kinds: dict[str, str]) -> bool:
    if "all" in node:
        return all(evaluate(child, p, today, custom_kinds) for child in node["all"])
    if "any" in node:
        return any(evaluate(child, p, today, custom_kinds) for child in node["any"])
    if "not" in node:
        inner = node["not"]
        inner = inner if isinstance(inner, dict) else {"all": inner}
        return not evaluate(inner, p, today, custom_kinds)
    f, op, value = node["field"], node["op"], node.get("value")
    prof = p.profile
    if f == "age":
        return _age(prof.get("birth_date"), op, value, today)
    if f in DATE_FIELDS:
        return _date(prof.get(f), op, value, today)
    if f == "created":
        return _date(p.created, op, value, today)
    if f == "condition":
        return _equality(prof.get("conditions") or [], op, value, _code_matches)
    if f == "medication":
        meds = prof.get("medications") or []
        return _equality(meds, op, value, lambda a, b: norm(a) == norm(b))
    if f == "language":
        lang = prof.get("language")
        return _equality([lang] if lang else [], op, value, _lang_matches)
    if f == "zip":
        z = prof.get("zip_code")
        return _equality([z[:5]] if z else [], op, value, lambda a, b: a == b)
    if f == "zip3":
        z = prof.get("zip_code")
        return _equality([z[:3]] if z else [], op, value, lambda a, b: a == b)
    if f in TEXT_FIELDS:
        v = prof.get(TEXT_FIELDS[f])
        return _equality([v] if v else [], op, value, lambda a, b: norm(a) == norm(b))
    if f == "status":
        return _equality([p.status], op, value, lambda a, b: a == b)
    if f == "email_domain":
        return _equality([p.domain], op, value, lambda a, b: a == b)
    if f == "list":
        return _equality(sorted(p.lists), op, value, lambda a, b: a == b)
    if f == "consent":
        return _equality(sorted(p.consents), op, value, lambda a, b: a == b)
    if f.startswith("custom."):
        key = f.removeprefix("custom.")
        v = p.custom.get(key)
        if custom_kinds[key] == "date":
            return _date(dt.date.fromisoformat(v) if v else None, op, value, today)
        if custom_kinds[key] == "number":
            from decimal import Decimal

            return _equality(
                [Decimal(str(v))] if v is not None else [],
                op,
                value,
                lambda a, b: a == Decimal(str(b)),
            )
        return _equality([v] if v else [], op, value, lambda a, b: norm(str(a)) == norm(str(b)))
    raise AssertionError(f)
