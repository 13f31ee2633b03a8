"""Audit-event ``details`` as readable text: ``key: value`` lines, not a Python repr.

``{{ event.details|audit_detail_lines }}`` gives the lines for a template; the admin
uses :func:`detail_lines` too. Nested mappings are flattened with dotted keys
(``after.role: Admin``), lists joined with commas, booleans shown as yes/no.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import template

register = template.Library()

EMPTY = "—"


def _value(value: Any) -> str:
    if value is None or value == "" or value == [] or value == {}:
        return EMPTY
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(_value(item) for item in value)
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {_value(v)}" for k, v in value.items())
    return str(value)


def _lines(details: Mapping[str, Any], prefix: str) -> list[str]:
    lines: list[str] = []
    for key, value in details.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            lines += _lines(value, f"{name}.")
        else:
            lines.append(f"{name}: {_value(value)}")
    return lines


def detail_lines(details: Any) -> list[str]:
    """``details`` (the JSON of an audit event) as ``key: value`` lines."""
    if details is None or details == {}:
        return []
    if not isinstance(details, Mapping):
        return [_value(details)]
    return _lines(details, "")


@register.filter
def audit_detail_lines(details: Any) -> list[str]:
    return detail_lines(details)
