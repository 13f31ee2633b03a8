"""Clock arithmetic in the contact's time zone (waits, windows, date triggers).

A contact's ``time_zone`` is an IANA name (validated on write) or empty; empty means
the organization's zone (``LUXMAIL_TIME_ZONE``). Everything here is pure: callers pass
``now`` (an aware datetime), so tests control the clock.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from functools import cache
from typing import Any

from django.conf import settings


@cache
def all_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def org_zone_name() -> str:
    return str(settings.TIME_ZONE or "UTC")


def zone(name: str | None) -> dt.tzinfo:
    """The contact's zone, or the organization's for an empty or unknown name."""
    if name and name in all_zones():
        return zoneinfo.ZoneInfo(name)
    return zoneinfo.ZoneInfo(org_zone_name())


def parse_clock(text: str) -> dt.time:
    hours, minutes = text.split(":")
    return dt.time(int(hours), int(minutes))


def at_local(day: dt.date, clock: dt.time, tz: dt.tzinfo) -> dt.datetime:
    """``day`` at ``clock`` in ``tz`` as an aware datetime (a time skipped by a DST change
    resolves to the instant right after the gap)."""
    moment = dt.datetime.combine(day, clock, tzinfo=tz)
    return moment.astimezone(dt.UTC).astimezone(tz)


def duration(config: dict[str, Any]) -> dt.timedelta:
    return dt.timedelta(
        days=int(config.get("days") or 0),
        hours=int(config.get("hours") or 0),
        minutes=int(config.get("minutes") or 0),
    )


def window_start(config: dict[str, Any], tz: dt.tzinfo, now: dt.datetime) -> dt.datetime:
    """``now`` when it lies inside the window (weekdays, start to end, local time), else the
    next moment the window opens."""
    start, end = parse_clock(config["start"]), parse_clock(config["end"])
    days = set(config["days"])
    local = now.astimezone(tz)
    for offset in range(8):
        day = local.date() + dt.timedelta(days=offset)
        if day.weekday() not in days:
            continue
        opens, closes = at_local(day, start, tz), at_local(day, end, tz)
        if offset == 0 and opens <= local < closes:
            return now
        if opens > local:
            return opens
    raise ValueError("a window without weekdays never opens")


def last_clock_day(tz: dt.tzinfo, clock: dt.time, now: dt.datetime) -> dt.date:
    """The latest local day whose ``clock`` time has passed (today, or yesterday)."""
    local = now.astimezone(tz)
    if local.timetz().replace(tzinfo=None) >= clock:
        return local.date()
    return local.date() - dt.timedelta(days=1)


def next_clock(tz: dt.tzinfo, clock: dt.time, now: dt.datetime) -> dt.datetime:
    """The next moment (after ``now``) the local time is ``clock``."""
    local = now.astimezone(tz)
    candidate = at_local(local.date(), clock, tz)
    if candidate <= local:
        candidate = at_local(local.date() + dt.timedelta(days=1), clock, tz)
    return candidate


def local_date(name: str | None, now: dt.datetime) -> dt.date:
    return now.astimezone(zone(name)).date()


def zones_by_local_date(now: dt.datetime) -> dict[dt.date, list[str]]:
    """Every IANA zone grouped by its current local date (two or three groups)."""
    groups: dict[dt.date, list[str]] = {}
    for name in sorted(all_zones()):
        day = now.astimezone(zoneinfo.ZoneInfo(name)).date()
        groups.setdefault(day, []).append(name)
    return groups


def anniversaries(day: dt.date, *, first_year: int = 1900) -> list[dt.date]:
    """Dates whose yearly anniversary falls on ``day``: the same month and day in every
    year up to ``day``'s; 29 February counts on 1 March in common years (as ages do)."""
    found = []
    for year in range(first_year, day.year + 1):
        try:
            found.append(day.replace(year=year))
        except ValueError:
            continue  # 29 February of a common year
    if day.month == 3 and day.day == 1 and not _leap(day.year):
        found += [dt.date(year, 2, 29) for year in range(first_year, day.year) if _leap(year)]
    return sorted(found)


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
