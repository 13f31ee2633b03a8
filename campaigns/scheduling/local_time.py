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


def curve(
    due: Iterable[tuple[dt.datetime, int]], *, per_minute: int | None
) -> list[tuple[dt.datetime, int]]:
    """Messages per hour: ``due`` (moment, count) pairs spread by the throttle.

    Without a throttle each message goes out in the hour it becomes due; with one, an
    hour carries at most ``per_minute * 60`` and the backlog moves to the next hours.
    """
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
