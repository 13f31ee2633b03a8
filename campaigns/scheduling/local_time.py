"""Pure time arithmetic for local-time sends and quiet hours (no database).

Every function takes the current time as an argument, so the planner and its tests
share one clock.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

# The zone furthest ahead of UTC (Line Islands): the first place where a given local
# wall-clock time happens.
EARLIEST_ZONE = ZoneInfo("Pacific/Kiritimati")


@lru_cache(maxsize=1)
def valid_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def zone_of(name: str | None, *, default: ZoneInfo) -> ZoneInfo:
    """The contact's zone, or ``default`` when the name is empty or not an IANA zone."""
    if name and name in valid_zones():
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            return default
    return default


@dataclass(frozen=True)
class QuietHours:
    """From ``start`` o'clock to ``end`` o'clock local time (may wrap past midnight);
    ``start == end`` means none."""

    start: int
    end: int

    @property
    def empty(self) -> bool:
        return self.start == self.end

    def contains(self, local: dt.time) -> bool:
        if self.empty:
            return False
        hour = local.hour
        if self.start < self.end:
            return self.start <= hour < self.end
        return hour >= self.start or hour < self.end

    def release(self, moment: dt.datetime, zone: ZoneInfo) -> dt.datetime:
        """``moment`` if it is outside quiet hours in ``zone``, else the end of them."""
        local = moment.astimezone(zone)
        if not self.contains(local.time()):
            return moment
        end_day = local.date()
        if self.start > self.end and local.hour >= self.start:
            end_day += dt.timedelta(days=1)
        end = dt.datetime.combine(end_day, dt.time(self.end), tzinfo=zone)
        return end.astimezone(dt.UTC)

    def describe(self) -> str:
        if self.empty:
            return "none"
        return f"{self.start:02d}:00-{self.end:02d}:00"


def not_before(
    *,
    now: dt.datetime,
    zone: ZoneInfo,
    local_date: dt.date | None = None,
    local_time: dt.time | None = None,
    quiet: QuietHours | None = None,
    send_at: dt.datetime | None = None,
) -> dt.datetime:
    """When a message to a recipient in ``zone`` may go out, in UTC (never before ``now``).

    ``local_date``/``local_time``: that wall-clock time in ``zone`` (already past: now).
    ``send_at``: an absolute time (an A/B variant's send time). Then quiet hours move the
    moment to their end in ``zone``.
    """
    moment = now
    if local_date is not None and local_time is not None:
        moment = max(now, dt.datetime.combine(local_date, local_time, tzinfo=zone))
    if send_at is not None:
        moment = max(moment, send_at)
    if quiet is not None:
        moment = quiet.release(moment, zone)
    return moment.astimezone(dt.UTC)


def first_local_instant(local_date: dt.date, local_time: dt.time) -> dt.datetime:
    """The first moment anywhere on Earth when the clock reads ``local_time`` on
    ``local_date``: a local-time send must start by then."""
    return dt.datetime.combine(local_date, local_time, tzinfo=EARLIEST_ZONE).astimezone(dt.UTC)


def hour_of(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def releases(
    names: Iterable[str | None], *, quiet: QuietHours, now: dt.datetime, default: ZoneInfo
) -> dict[str | None, dt.datetime]:
    """The zone names (contacts' ``time_zone`` values) that are inside quiet hours at
    ``now``, each with the end of them in UTC. Names that are empty or not IANA zones
    follow ``default``. One computation per distinct name: the send path calls it once
    per batch with the batch's names."""
    if quiet.empty:
        return {}
    result: dict[str | None, dt.datetime] = {}
    for name in set(names):
        moment = quiet.release(now, zone_of(name, default=default))
        if moment > now:
            result[name] = moment.astimezone(dt.UTC)
    return result


def curve(
    due: Iterable[tuple[dt.datetime, int]],
    *,
    per_minute: int | None,
    quiet: QuietHours | None = None,
    zones: Iterable[tuple[dt.datetime, int, ZoneInfo]] | None = None,
) -> list[tuple[dt.datetime, int]]:
    """Messages per hour: ``due`` (moment, count) pairs spread by the throttle.

    Without a throttle each message goes out in the hour it becomes due; with one, an
    hour carries at most ``per_minute * 60`` and the backlog moves to the next hours.
    With ``quiet`` hours and a throttle, pass ``zones`` (moment, count, zone) instead of
    ``due``: the backlog of a zone waits while that zone is quiet, so a throttled send
    that runs into the evening shows its rest after the end of quiet hours.
    """
    if quiet is not None and not quiet.empty and per_minute and zones is not None:
        return _zoned_curve(list(zones), per_minute=per_minute, quiet=quiet)
    if zones is not None:
        due = [(moment, count) for moment, count, _ in zones]
    buckets: Counter[dt.datetime] = Counter()
    for moment, count in due:
        if count > 0:
            buckets[hour_of(moment)] += count
    if not buckets:
        return []
    if not per_minute:
        return sorted(buckets.items())
    capacity = per_minute * 60
    result: list[tuple[dt.datetime, int]] = []
    hours = sorted(buckets)
    backlog = 0
    hour = hours[0]
    index = 0
    # Bounded: at most len(hours) + backlog / capacity iterations.
    limit = len(hours) + math.ceil(sum(buckets.values()) / capacity) + 1
    for _ in range(limit):
        while index < len(hours) and hours[index] <= hour:
            backlog += buckets[hours[index]]
            index += 1
        if backlog:
            sent = min(backlog, capacity)
            result.append((hour, sent))
            backlog -= sent
        if not backlog and index >= len(hours):
            break
        hour = hour + dt.timedelta(hours=1) if backlog else hours[index]
    return result


def _zoned_curve(
    due: list[tuple[dt.datetime, int, ZoneInfo]], *, per_minute: int, quiet: QuietHours
) -> list[tuple[dt.datetime, int]]:
    """:func:`curve` with a backlog per zone: in each hour the throttle's capacity goes
    to the zones not quiet at its start, in zone-name order (hour granularity: a zone
    with a half-hour offset is judged at the start of the UTC hour)."""
    buckets: Counter[tuple[dt.datetime, str]] = Counter()
    by_key: dict[str, ZoneInfo] = {}
    for moment, count, zone in due:
        if count > 0:
            buckets[(hour_of(moment), zone.key)] += count
            by_key[zone.key] = zone
    if not buckets:
        return []
    capacity = per_minute * 60
    arrivals = sorted(buckets.items())
    total = sum(buckets.values())
    backlog: dict[str, int] = {}
    result: list[tuple[dt.datetime, int]] = []
    hour = arrivals[0][0][0]
    index = 0
    # Bounded: every day has at least one hour outside quiet hours in every zone, so
    # each run of capacity takes at most a day; plus the hours messages arrive in.
    limit = (math.ceil(total / capacity) + 1) * 25 + len(arrivals)
    for _ in range(limit):
        while index < len(arrivals) and arrivals[index][0][0] <= hour:
            (_, key), count = arrivals[index]
            backlog[key] = backlog.get(key, 0) + count
            index += 1
        room = capacity
        sent = 0
        for key in sorted(backlog):
            if not room:
                break
            if not backlog[key] or quiet.contains(hour.astimezone(by_key[key]).time()):
                continue
            take = min(backlog[key], room)
            backlog[key] -= take
            room -= take
            sent += take
        if sent:
            result.append((hour, sent))
        waiting = any(backlog.values())
        if not waiting and index >= len(arrivals):
            break
        hour = hour + dt.timedelta(hours=1) if waiting else arrivals[index][0][0]
    return result
