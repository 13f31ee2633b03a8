"""``|when``: a date and time shown in the organization's time zone, with its name.

Every time LuxMail displays reads "2026-12-06 16:40 America/New_York", never a bare
clock time whose zone the reader has to guess (issue 12 item 6). Registered as a
template builtin (``settings.TEMPLATES``), so templates use it without ``{% load %}``.
``{% org_time_zone %}`` prints the zone's name beside date and time inputs.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import template
from django.utils import dateformat

from luxmail import org

register = template.Library()


@register.filter(expects_localtime=True)
def when(value: Any, fmt: str = "Y-m-d H:i") -> str:
    """``value`` (converted to the organization's time zone) formatted, plus the zone."""
    if not isinstance(value, dt.datetime | dt.date):
        return ""
    return f"{dateformat.format(value, fmt)} {org.time_zone()}"


@register.simple_tag
def org_time_zone() -> str:
    return org.time_zone()
