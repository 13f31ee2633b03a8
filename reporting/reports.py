"""Report selectors: numbers, splits and series from the rollup tables.

Every report is one ``GROUP BY`` over ``reporting_campaignrollup`` (or
``reporting_domainrollup`` when the recipient domain is split or filtered), joined
to the campaign (and its sender) for the campaign-level splits. What counts as opened
and clicked (:class:`Counting`) is the organization's default ("human only" or "include
automated", ``OrgSettings``), which every report, chart, download and API call can
override (``?events=human|all``): reports add up the matching label columns, and every
row also carries the human, privacy-proxy and automated columns side by side and the
automated events by kind. The event log still shows every event.

Dates are the organization's local dates (``TIME_ZONE``) of when messages were
queued: a campaign's numbers stay on the day it went out, also for opens that
happen later (cohort view). The activity series counts events by when they happened.
"""

# SQL here is assembled from fixed table, column and expression names (SPLITS, METRICS);
# every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import datetime as dt
import time
import zoneinfo
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from django.conf import settings
from django.db import connection, connections, transaction

from campaigns.models import Campaign
from luxmail import org, replica
from reporting.classification import label_counts
from reporting.models import AUTOMATION_KIND_CHOICES
from reporting.rollups import EVENT_LABELS, JOURNAL, METRIC_NAMES

SECURED_CHANNELS = ("smime", "pgp", "tls", "portal")
CHANNEL_LABELS = {
    "smime": "S/MIME",
    "pgp": "PGP",
    "tls": "Enforced TLS",
    "portal": "Secure portal",
    "opportunistic": "Opportunistic TLS",
    "plaintext-dev": "Development sink (no TLS)",
    "": "Not sent yet",
}


class ReportFilterError(ValueError):
    """A filter value is not acceptable (message says why)."""


# The "human only / include automated" switch: ?events=… on pages, downloads and the API.
EVENT_SCOPES = {"human": "Human only", "all": "Include automated"}
ALL_LABELS = ("human", "unknown", "privacy_proxy", "automated")


@dataclass(frozen=True)
class Counting:
    """Which labels count as opened and clicked.

    ``exclude_automated`` is the switch: *human only* counts human events (and
    ``unknown`` ones when ``count_unknown``); privacy-proxy fetches (Apple MPP, image
    proxies that fetch on delivery) prove delivery to a mail client, not reading, so they
    are shown beside the human numbers but never counted as human opens. *Include
    automated* counts every event. The organization's default lives in ``OrgSettings``;
    :meth:`override` applies a view's choice (``overridden`` then says so).
    """

    exclude_automated: bool = True
    count_unknown: bool = True
    overridden: bool = False

    @classmethod
    def from_settings(cls, events: str | None = None) -> Counting:
        """The organization's default, overridden by ``events`` (``human``/``all``) if given."""

        row = org.get_settings()
        return cls(bool(row.exclude_automated_events), bool(row.count_unknown_events)).override(
            events
        )

    def override(self, events: str | None) -> Counting:
        """This counting with the view's switch applied; an empty value keeps the default."""
        if not events:
            return self
        if events not in EVENT_SCOPES:
            raise ReportFilterError(f"events must be one of {', '.join(EVENT_SCOPES)}.")
        return replace(self, exclude_automated=events == "human", overridden=True)

    @property
    def events(self) -> str:
        """The switch position: ``human`` or ``all``."""
        return "human" if self.exclude_automated else "all"

    def counts(self, label: str) -> bool:
        return label_counts(
            label, exclude_automated=self.exclude_automated, count_unknown=self.count_unknown
        )

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(label for label in ALL_LABELS if self.counts(label))

    def labels_of(self, kind: str) -> tuple[str, ...]:
        """The counted labels that events of ``kind`` (open/click) can carry."""
        return tuple(label for label in self.labels if label in EVENT_LABELS[kind])

    def describe(self) -> str:
        if not self.exclude_automated:
            return "all opens and clicks, automated and privacy-proxy ones included"
        if self.count_unknown:
            return (
                "human and unclassified opens and clicks (automated events and "
                "privacy-proxy fetches excluded)"
            )
        return "human opens and clicks only (privacy-proxy fetches excluded)"


# A/B winners and journey decisions: people only, whatever the organization's default.
HUMAN_ONLY = Counting(exclude_automated=True, count_unknown=False)


@dataclass(frozen=True)
class Filters:
    start: dt.date | None = None
    end: dt.date | None = None  # inclusive
    campaign_ids: tuple[int, ...] = ()
    channels: tuple[str, ...] = ()
    domain: str = ""
    marketing_id: str = ""
    from_address: str = ""
    report_field: str = ""

    @property
    def needs_domain_table(self) -> bool:
        return bool(self.domain)


@dataclass(frozen=True)
class Split:
    name: str
    label: str
    group: tuple[str, ...]  # SQL expressions grouped by
    domain_table: bool = False


SPLITS: dict[str, Split] = {
    "campaign": Split("campaign", "Campaign", ("r.campaign_id", "c.name", "c.marketing_id")),
    "marketing_id": Split("marketing_id", "Marketing id", ("c.marketing_id",)),
    "report_field": Split("report_field", "Report field", ("c.report_field",)),
    "subject": Split("subject", "Subject", ("c.frozen_subject",)),
    "from_address": Split("from_address", "From address", ("si.from_email",)),
    "domain": Split("domain", "Recipient domain", ("r.domain",), domain_table=True),
    "channel": Split("channel", "Channel", ("r.channel",)),
    "day": Split("day", "Day", ("r.hour",)),
}
SPLIT_CHOICES = [(split.name, split.label) for split in SPLITS.values()]


@dataclass
class Row:
    """One report row: the raw sums and what they mean under the counting rule."""

    key: str
    label: str
    metrics: dict[str, int]
    counting: Counting
    campaign_id: int | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def __getattr__(self, name: str) -> int:
        metrics = self.__dict__.get("metrics", {})
        if name in metrics:
            return int(metrics[name])
        raise AttributeError(name)

    def _counted(self, prefix: str) -> int:
        kind = "open" if prefix.startswith("open") else "click"
        return sum(self.metrics[f"{prefix}_{label}"] for label in self.counting.labels_of(kind))

    @property
    def events_all(self) -> int:
        """Every open and click event, whatever its label."""
        return sum(self.metrics[f"opens_{label}"] for label in EVENT_LABELS["open"]) + sum(
            self.metrics[f"clicks_{label}"] for label in EVENT_LABELS["click"]
        )

    @property
    def automated_share(self) -> float | None:
        """Automated opens and clicks / all opens and clicks."""
        events = self.events_all
        automated = self.metrics["opens_automated"] + self.metrics["clicks_automated"]
        return automated / events if events else None

    @property
    def privacy_proxy_share(self) -> float | None:
        """Privacy-proxy opens / all opens and clicks."""
        events = self.events_all
        return self.metrics["opens_privacy_proxy"] / events if events else None

    @property
    def opens_auto_other(self) -> int:
        """Automated opens whose verdict named no kind."""
        return self.metrics["opens_automated"] - sum(
            self.metrics[f"opens_auto_{kind}"] for kind, _ in AUTOMATION_KIND_CHOICES
        )

    @property
    def clicks_auto_other(self) -> int:
        return self.metrics["clicks_automated"] - sum(
            self.metrics[f"clicks_auto_{kind}"] for kind, _ in AUTOMATION_KIND_CHOICES
        )

    @property
    def automation_kinds(self) -> list[tuple[str, int]]:
        """(kind label, automated opens + clicks) for every kind seen, largest first."""
        found = [
            (label, self.metrics[f"opens_auto_{kind}"] + self.metrics[f"clicks_auto_{kind}"])
            for kind, label in AUTOMATION_KIND_CHOICES
        ]
        found.append(("Other", self.opens_auto_other + self.clicks_auto_other))
        return sorted(
            ((label, count) for label, count in found if count), key=lambda item: -item[1]
        )

    @property
    def opened(self) -> int:
        """Unique opens that count (a click counts as an open: docs/tracking.md)."""
        return self._counted("opened")

    @property
    def clicked(self) -> int:
        return self._counted("clicked")

    @property
    def opens(self) -> int:
        return self._counted("opens")

    @property
    def clicks(self) -> int:
        return self._counted("clicks")

    @property
    def open_rate(self) -> float | None:
        return self.opened / self.metrics["delivered"] if self.metrics["delivered"] else None

    @property
    def click_rate(self) -> float | None:
        """CTR: unique clicks / delivered."""
        return self.clicked / self.metrics["delivered"] if self.metrics["delivered"] else None

    @property
    def click_to_open_rate(self) -> float | None:
        return self.clicked / self.opened if self.opened else None

    def value(self, column: str) -> Any:
        if column in ("key", "label"):
            return self.label
        if column in self.metrics:
            return self.metrics[column]
        return getattr(self, column)


# Columns of tables and exports: (name, heading). Rates are fractions.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("messages", "Recipients"),
    ("queued", "Queued"),
    ("sent", "Sent"),
    ("delivered", "Delivered"),
    ("failed", "Failed"),
    ("bounced", "Bounced"),
    ("opened", "Opened (unique, counted)"),
    ("opened_human", "Opened: human"),
    ("opened_unknown", "Opened: unknown"),
    ("opened_privacy_proxy", "Opened: privacy proxy only"),
    ("opened_automated", "Opened: automated only"),
    ("opens", "Opens (total, counted)"),
    ("opens_human", "Opens: human"),
    ("opens_unknown", "Opens: unknown"),
    ("opens_privacy_proxy", "Opens: privacy proxy"),
    ("opens_automated", "Opens: automated"),
    ("clicked", "Clicked (unique, counted)"),
    ("clicked_human", "Clicked: human"),
    ("clicked_unknown", "Clicked: unknown"),
    ("clicked_automated", "Clicked: automated only"),
    ("clicks", "Clicks (total, counted)"),
    ("clicks_human", "Clicks: human"),
    ("clicks_unknown", "Clicks: unknown"),
    ("clicks_automated", "Clicks: automated"),
    ("automated_share", "Automated share of events"),
    ("privacy_proxy_share", "Privacy-proxy share of events"),
    *(
        (f"{kind}s_auto_{code}", f"Automated {kind}s: {label.lower()}")
        for kind in ("open", "click")
        for code, label in [*AUTOMATION_KIND_CHOICES, ("other", "Other")]
    ),
    ("unsubscribed", "Unsubscribes"),
    ("complained", "Complaints"),
    ("open_rate", "Open rate"),
    ("click_rate", "Click-through rate"),
    ("click_to_open_rate", "Click-to-open rate"),
)
RATE_COLUMNS = {
    "open_rate",
    "click_rate",
    "click_to_open_rate",
    "automated_share",
    "privacy_proxy_share",
}
SORTABLE = {"label", *(name for name, _ in COLUMNS)}


def _zone() -> dt.tzinfo:
    return zoneinfo.ZoneInfo(settings.TIME_ZONE or "UTC")


def _at(moment: dt.datetime) -> Any:
    """A timestamp parameter: SQLite compares the stored UTC text, so send UTC text."""
    if connection.vendor == "postgresql":
        return moment
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def local_day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=_zone())


def _where(filters: Filters) -> tuple[list[str], list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if filters.start is not None:
        clauses.append("r.hour >= %s")
        params.append(_at(local_day_start(filters.start)))
    if filters.end is not None:
        clauses.append("r.hour < %s")
        params.append(_at(local_day_start(filters.end + dt.timedelta(days=1))))
    if filters.start and filters.end and filters.end < filters.start:
        raise ReportFilterError("The end date is before the start date.")
    if filters.campaign_ids:
        clauses.append(f"r.campaign_id IN ({', '.join(['%s'] * len(filters.campaign_ids))})")
        params.extend(filters.campaign_ids)
    if filters.channels:
        clauses.append(f"r.channel IN ({', '.join(['%s'] * len(filters.channels))})")
        params.extend(filters.channels)
    if filters.domain:
        clauses.append("r.domain = %s")
        params.append(filters.domain.strip().lower())
    for column, value in (
        ("c.marketing_id", filters.marketing_id),
        ("si.from_email", filters.from_address),
        ("c.report_field", filters.report_field),
    ):
        if value:
            clauses.append(f"{column} = %s")
            params.append(value.strip())
    return clauses, params


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC)


def _floor(level: str, moment: dt.datetime) -> dt.datetime:
    at = _utc(moment).replace(minute=0, second=0, microsecond=0)
    if level == "hour":
        return at
    at = at.replace(hour=0)
    if level == "day":
        return at
    if level == "week":
        return at - dt.timedelta(days=at.weekday())  # ISO weeks start on Monday
    return at.replace(day=1)


def _next(level: str, moment: dt.datetime) -> dt.datetime:
    if level == "month":
        return (moment.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return moment + {"week": dt.timedelta(weeks=1), "day": dt.timedelta(days=1)}.get(
        level, dt.timedelta(hours=1)
    )


def _ceil(level: str, moment: dt.datetime) -> dt.datetime:
    floor = _floor(level, moment)
    return floor if floor == _utc(moment) else _next(level, floor)


Bound = dt.datetime | None
Piece = tuple[str, Bound, Bound, int]  # (total | month | week | day | hour, low, high, sign)
LEVELS = ("month", "week", "day", "hour")


def _cover(
    low: dt.datetime, high: dt.datetime, level: int, sign: int, costs: dict[str, float]
) -> list[Piece]:
    """Signed pieces of [low, high): whole buckets of ``LEVELS[level]``; each partial
    bucket at an end either by finer pieces inside it or as the whole bucket minus finer
    pieces outside it, whichever reads fewer rows (:data:`_PIECE_COST`)."""
    if low >= high:
        return []
    name = LEVELS[level]
    if name == "hour":
        return [("hour", low, high, sign)]
    first, last = _ceil(name, low), _floor(name, high)
    pieces: list[Piece] = []
    if first < last:
        pieces.append((name, first, last, sign))
        partials = [(low, first), (last, high)]
    elif first == last:
        partials = [(low, first), (last, high)]
    else:
        partials = [(low, high)]
    for part_low, part_high in partials:
        if part_low >= part_high:
            continue
        bucket_low, bucket_high = _floor(name, part_low), _ceil(name, part_high)
        inside = _cover(part_low, part_high, level + 1, sign, costs)
        around = [
            (name, bucket_low, bucket_high, sign),
            *_cover(bucket_low, part_low, level + 1, -sign, costs),
            *_cover(part_high, bucket_high, level + 1, -sign, costs),
        ]
        pieces += around if _cost(around, costs) < _cost(inside, costs) else inside
    return pieces


# Rows a piece reads, relative to a day's, when the tables have no statistics yet: each
# domain once per bucket, so a month holds more domains than a day and far fewer than
# thirty days do; an hour piece reads one campaign's rows per channel.
DEFAULT_PIECE_COSTS = {"month": 2.0, "week": 1.5, "day": 1.0, "hour": 0.5}
_STATS_SECONDS = 600.0
_stats: tuple[float, dict[str, float]] | None = None


_BUCKET = {
    "week": dt.timedelta(weeks=1),
    "day": dt.timedelta(days=1),
    "hour": dt.timedelta(hours=1),
}


def _buckets(kind: str, low: Bound, high: Bound) -> float:
    """How many buckets a piece spans (a piece reads each of them)."""
    if low is None or high is None:
        return 1.0
    if kind == "month":
        return float((high.year - low.year) * 12 + high.month - low.month)
    return (high - low) / _BUCKET[kind]


def _cost(pieces: list[Piece], costs: dict[str, float]) -> float:
    return sum(costs[kind] * _buckets(kind, low, high) for kind, low, high, _ in pieces)


def piece_costs() -> dict[str, float]:
    """Rows per month, week, day and hour bucket relative to a day's, from PostgreSQL's
    statistics (rows / distinct buckets), refreshed every ten minutes per process."""
    global _stats

    if connection.vendor != "postgresql":
        return DEFAULT_PIECE_COSTS
    now = time.monotonic()
    if _stats is not None and now - _stats[0] < _STATS_SECONDS:
        return _stats[1]
    per_bucket: dict[str, float] = {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, c.reltuples, s.n_distinct FROM pg_class c "
            "JOIN pg_stats s ON s.tablename = c.relname AND s.attname = %s "
            "WHERE c.relname = %s UNION ALL "
            "SELECT c.relname, c.reltuples, s.n_distinct FROM pg_class c "
            "JOIN pg_stats s ON s.tablename = c.relname AND s.attname = %s "
            "WHERE c.relname = %s UNION ALL "
            "SELECT c.relname, c.reltuples, s.n_distinct FROM pg_class c "
            "JOIN pg_stats s ON s.tablename = c.relname AND s.attname = %s "
            "WHERE c.relname = %s UNION ALL "
            "SELECT c.relname, c.reltuples, s.n_distinct FROM pg_class c "
            "JOIN pg_stats s ON s.tablename = c.relname AND s.attname = %s "
            "WHERE c.relname = %s",
            [
                "month", "reporting_domainmonthrollup",
                "week", "reporting_domainweekrollup",
                "day", "reporting_domaindayrollup",
                "hour", "reporting_domainrollup",
            ],
        )  # fmt: skip
        for table, rows, distinct in cursor.fetchall():
            if not rows or rows <= 0 or not distinct:
                continue
            buckets = distinct if distinct > 0 else -distinct * rows
            level = table.removeprefix("reporting_domain").removesuffix("rollup") or "hour"
            per_bucket[level] = rows / max(buckets, 1.0)
    day = per_bucket.get("day")
    if day and all(level in per_bucket for level in ("month", "week", "hour")):
        costs = {level: per_bucket[level] / day for level in ("month", "week", "day", "hour")}
    else:
        costs = DEFAULT_PIECE_COSTS
    _stats = (now, costs)
    return costs


def range_segments(start: Bound, end: Bound, costs: dict[str, float] | None = None) -> list[Piece]:
    """[start, end) as few rollup rows as possible: signed pieces of whole UTC months,
    ISO weeks, days and hours (see :func:`_cover`); an open bound is None. A range of
    local dates ends on local midnights, which are whole UTC hours (whole-hour zones)."""
    costs = costs or DEFAULT_PIECE_COSTS
    if start is None and end is None:
        return [("total", None, None, 1)]
    if start is None:
        assert end is not None
        last = _floor("month", end)
        return [("month", None, last, 1), *_cover(last, _utc(end), 1, 1, costs)]
    if end is None:
        first = _ceil("month", start)
        return [("month", first, None, 1), *_cover(_utc(start), first, 1, 1, costs)]
    return _cover(_utc(start), _utc(end), 0, 1, costs)


def _uses_domain_tables(filters: Filters, group: tuple[str, ...], domain_table: bool) -> bool:
    """A domain split (or a domain filter) across all campaigns and channels: the
    month/day/all-time domain tables hold each domain once per bucket."""
    if not (domain_table or filters.needs_domain_table):
        return False
    if filters.campaign_ids or filters.channels:
        return False
    if filters.marketing_id or filters.from_address or filters.report_field:
        return False
    return all(expr == "r.domain" for expr in group)


_TABLE_KEYS = {
    "reporting_campaignrollup": "hour, campaign_id, channel",
    "reporting_domainrollup": "hour, campaign_id, domain, channel",
}
_PIECE_TABLES = {
    "total": ("reporting_domaintotalrollup", ""),
    "month": ("reporting_domainmonthrollup", "month"),
    "week": ("reporting_domainweekrollup", "week"),
    "day": ("reporting_domaindayrollup", "day"),
    "hour": ("reporting_domainrollup", "hour"),
}


def _domain_query(filters: Filters) -> tuple[str, list[Any]]:
    """``SELECT domain, <metrics>`` over the date range, piece by piece."""
    start = local_day_start(filters.start) if filters.start else None
    end = local_day_start(filters.end + dt.timedelta(days=1)) if filters.end else None
    parts: list[str] = []
    params: list[Any] = []
    for kind, low, high, sign in range_segments(start, end, piece_costs()):
        table, column = _PIECE_TABLES[kind]
        columns = ", ".join(
            ("domain", *(name if sign > 0 else f"-{name}" for name in METRIC_NAMES))
        )
        where: list[str] = []
        piece_params: list[Any] = []
        if filters.domain:
            where.append("domain = %s")
            piece_params.append(filters.domain.strip().lower())
        if low is not None:
            where.append(f"{column} >= %s")
            piece_params.append(_at(low))
        if high is not None:
            where.append(f"{column} < %s")
            piece_params.append(_at(high))
        parts.append(
            f"SELECT {columns} FROM {table}" + (" WHERE " + " AND ".join(where) if where else "")
        )
        params += piece_params
        # Changes the triggers journaled and the next fold will add (seconds' worth).
        journal_where = [w for w in where if not w.startswith(f"{column} ")]
        if low is not None:
            journal_where.append("hour >= %s")
        if high is not None:
            journal_where.append("hour < %s")
        parts.append(
            f"SELECT {columns} FROM {JOURNAL}"
            + (" WHERE " + " AND ".join(journal_where) if journal_where else "")
        )
        params += piece_params
    return " UNION ALL ".join(parts), params


def _execute(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    alias = replica.alias_for_reads()
    database = connections[alias]
    with transaction.atomic(using=alias), database.cursor() as cursor:
        if database.vendor == "postgresql":
            # Tens of thousands of groups of two dozen sums: hash them in memory. JIT
            # compiling them costs more than it saves (measured: ~250 ms of JIT on a
            # 200 ms domain split over 10 M messages; bench/reports.py).
            cursor.execute("SET LOCAL work_mem = '64MB'")
            cursor.execute("SET LOCAL jit = off")
        cursor.execute(sql, params)
        return list(cursor.fetchall())


def _query(
    filters: Filters,
    group: tuple[str, ...],
    domain_table: bool,
    *,
    order: str = "",
    limit: int | None = None,
) -> list[tuple[Any, ...]]:
    """Rows of ``group`` values, the metric sums, and (with ``limit``) the group count."""
    sums = ", ".join(f"SUM(r.{name})" for name in METRIC_NAMES)
    columns = ", ".join((*group, sums))
    if limit is not None:
        columns += ", COUNT(*) OVER ()"
    tail = ""
    if group:
        # Keys all of whose messages moved on (e.g. channel "" before sending) sum to 0.
        tail = " GROUP BY " + ", ".join(group) + " HAVING SUM(r.messages) <> 0"
    if order:
        tail += f" ORDER BY {order}"
    if limit is not None:
        tail += f" LIMIT {int(limit)}"
    if _uses_domain_tables(filters, group, domain_table):
        source, params = _domain_query(filters)
        return _execute(f"SELECT {columns} FROM ({source}) r{tail}", params)
    table = (
        "reporting_domainrollup"
        if domain_table or filters.needs_domain_table
        else ("reporting_campaignrollup")
    )
    joins_campaign = any(expr.startswith(("c.", "si.")) for expr in group) or any(
        (filters.marketing_id, filters.from_address, filters.report_field)
    )
    clauses, params = _where(filters)
    keys = _TABLE_KEYS[table]
    # Plus the journaled changes the next fold will add (see rollups.fold).
    sql = (
        f"SELECT {columns} FROM (SELECT {keys}, {', '.join(METRIC_NAMES)} FROM {table} "
        f"UNION ALL SELECT {keys}, {', '.join(METRIC_NAMES)} FROM {JOURNAL}) r"
    )
    if joins_campaign:
        sql += (
            " JOIN campaigns_campaign c ON c.id = r.campaign_id"
            " LEFT JOIN campaigns_senderidentity si ON si.id = c.sender_id"
        )
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    return _execute(sql + tail, params)


def _metrics(values: Iterable[Any]) -> dict[str, int]:
    return {name: int(value or 0) for name, value in zip(METRIC_NAMES, values, strict=True)}


@replica.reads
def totals(*, filters: Filters, counting: Counting) -> Row:
    rows = _query(filters, (), False)
    return Row("total", "Total", _metrics(rows[0] if rows else [0] * len(METRIC_NAMES)), counting)


def _day_of(hour: Any) -> dt.date:
    if isinstance(hour, str):  # SQLite without type conversion
        hour = dt.datetime.fromisoformat(hour)
    if hour.tzinfo is None:
        hour = hour.replace(tzinfo=dt.UTC)
    return hour.astimezone(_zone()).date()


def _order_sql(spec: Split, sort: str, descending: bool, counting: Counting) -> str:
    """The ORDER BY of a split over its aggregates (ties: by label)."""
    direction = "DESC" if descending else "ASC"
    label = "c.name" if spec.name == "campaign" else spec.group[0]

    def total(prefix: str) -> str:
        kind = "open" if prefix.startswith("open") else "click"
        return " + ".join(f"SUM(r.{prefix}_{name})" for name in counting.labels_of(kind)) or "0"

    def plus(*names: str) -> str:
        return " + ".join(f"SUM(r.{name})" for name in names)

    events = plus(
        *(f"opens_{label}" for label in EVENT_LABELS["open"]),
        *(f"clicks_{label}" for label in EVENT_LABELS["click"]),
    )
    kinds = [code for code, _ in AUTOMATION_KIND_CHOICES]
    expressions = {
        "automated_share": f"({plus('opens_automated', 'clicks_automated')}) * 1.0 "
        f"/ NULLIF({events}, 0)",
        "privacy_proxy_share": f"SUM(r.opens_privacy_proxy) * 1.0 / NULLIF({events}, 0)",
        "opens_auto_other": (
            f"SUM(r.opens_automated) - ({plus(*(f'opens_auto_{k}' for k in kinds))})"
        ),
        "clicks_auto_other": (
            f"SUM(r.clicks_automated) - ({plus(*(f'clicks_auto_{k}' for k in kinds))})"
        ),
        "opened": total("opened"),
        "clicked": total("clicked"),
        "opens": total("opens"),
        "clicks": total("clicks"),
        "open_rate": f"({total('opened')}) * 1.0 / NULLIF(SUM(r.delivered), 0)",
        "click_rate": f"({total('clicked')}) * 1.0 / NULLIF(SUM(r.delivered), 0)",
        "click_to_open_rate": f"({total('clicked')}) * 1.0 / NULLIF({total('opened')}, 0)",
    }
    if sort in ("label", "key"):
        return f"{label} {direction}"
    expression = expressions.get(sort) or f"SUM(r.{sort})"
    # NULL rates sort last both ways, as sort_rows does.
    nulls = "NULLS LAST" if descending else "NULLS FIRST"
    return f"{expression} {direction} {nulls}, {label} ASC"


@dataclass
class SplitPage:
    rows: list[Row]
    total_rows: int  # values of the split in all, beyond ``rows``


@replica.reads
def split(
    *,
    filters: Filters,
    by: str,
    counting: Counting,
    sort: str = "sent",
    descending: bool = True,
    limit: int | None = None,
) -> list[Row]:
    """One row per value of ``by`` (see :data:`SPLITS`), sorted by ``sort``; the first
    ``limit`` rows only when given (sorted and cut in SQL: what the page shows)."""
    return split_page(
        filters=filters, by=by, counting=counting, sort=sort, descending=descending, limit=limit
    ).rows


@replica.reads
def split_page(
    *,
    filters: Filters,
    by: str,
    counting: Counting,
    sort: str = "sent",
    descending: bool = True,
    limit: int | None = None,
) -> SplitPage:
    spec = SPLITS.get(by)
    if spec is None:
        raise ReportFilterError(f"Unknown split '{by}'.")
    if sort not in SORTABLE:
        raise ReportFilterError(f"Cannot sort by '{sort}'.")
    # day and channel have a handful of rows, and labels SQL does not know: sort in Python.
    in_sql = limit is not None and by not in ("day", "channel")
    raw = _query(
        filters,
        spec.group,
        spec.domain_table,
        order=_order_sql(spec, sort, descending, counting) if in_sql else "",
        limit=limit if in_sql else None,
    )
    width = len(spec.group)
    count = int(raw[0][-1]) if in_sql and raw else None
    if in_sql:
        raw = [record[:-1] for record in raw]
    rows: list[Row] = []
    if by == "day":
        per_day: dict[dt.date, list[int]] = defaultdict(lambda: [0] * len(METRIC_NAMES))
        for record in raw:
            sums = per_day[_day_of(record[0])]
            for i, value in enumerate(record[1:]):
                sums[i] += int(value or 0)
        rows = [
            Row(day.isoformat(), day.isoformat(), _metrics(values), counting)
            for day, values in per_day.items()
        ]
    else:
        for record in raw:
            metrics = _metrics(record[width:])
            if by == "campaign":
                campaign_id, name, marketing_id = record[0], record[1], record[2]
                label = f"{name} ({marketing_id})" if marketing_id else str(name)
                rows.append(
                    Row(str(campaign_id), label, metrics, counting, campaign_id=int(campaign_id))
                )
            elif by == "channel":
                code = str(record[0] or "")
                rows.append(Row(code, CHANNEL_LABELS.get(code, code), metrics, counting))
            else:
                value = "" if record[0] is None else str(record[0])
                rows.append(Row(value, value or "(none)", metrics, counting))
    if not in_sql:
        rows = sort_rows(rows, sort=sort, descending=descending)
        count = len(rows)
        if limit is not None:
            rows = rows[:limit]
    return SplitPage(rows, count or 0)


def sort_rows(rows: list[Row], *, sort: str, descending: bool) -> list[Row]:
    if sort not in SORTABLE:
        raise ReportFilterError(f"Cannot sort by '{sort}'.")

    def key(row: Row) -> tuple[int, Any]:
        value = row.value(sort)
        if value is None:
            return (0, 0)
        return (1, value.lower() if isinstance(value, str) else value)

    ordered = sorted(rows, key=lambda row: row.label.lower())
    return sorted(ordered, key=key, reverse=descending)


@replica.reads
def secured_by_channel(*, filters: Filters, counting: Counting) -> list[Row]:
    """Sent messages per secure channel (S/MIME, PGP, TLS, portal), then the others."""
    rows = {row.key: row for row in split(filters=filters, by="channel", counting=counting)}
    ordered = [rows[code] for code in SECURED_CHANNELS if code in rows]
    ordered += [row for code, row in sorted(rows.items()) if code not in SECURED_CHANNELS]
    return ordered


def secured_count(rows: list[Row]) -> int:
    return sum(row.metrics["sent"] for row in rows if row.key in SECURED_CHANNELS)


@replica.reads
def activity(*, filters: Filters) -> list[tuple[dt.date, str, str, int]]:
    """Events per local day, kind and label (when they happened), for the activity chart.

    Honors the date range and the campaign filter (events are not split by channel
    or domain: the chart says so).
    """
    clauses: list[str] = []
    params: list[Any] = []
    if filters.start is not None:
        clauses.append("r.hour >= %s")
        params.append(_at(local_day_start(filters.start)))
    if filters.end is not None:
        clauses.append("r.hour < %s")
        params.append(_at(local_day_start(filters.end + dt.timedelta(days=1))))
    if filters.campaign_ids:
        clauses.append(f"r.campaign_id IN ({', '.join(['%s'] * len(filters.campaign_ids))})")
        params.extend(filters.campaign_ids)
    sql = "SELECT r.hour, r.kind, r.label, SUM(r.events) FROM reporting_eventrollup r"
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    sql += " GROUP BY r.hour, r.kind, r.label"
    with connections[replica.alias_for_reads()].cursor() as cursor:
        cursor.execute(sql, params)
        raw = cursor.fetchall()
    per_day: dict[tuple[dt.date, str, str], int] = defaultdict(int)
    for hour, kind, label, events in raw:
        per_day[(_day_of(hour), kind, label)] += int(events or 0)
    return sorted((day, kind, label, count) for (day, kind, label), count in per_day.items())


def campaign_choices() -> list[tuple[int, str]]:
    """Campaigns that have messages, newest first (for the filter)."""

    return [
        (pk, f"{name} ({marketing})" if marketing else name)
        for pk, name, marketing in Campaign.objects.filter(started_at__isnull=False)
        .order_by("-started_at")
        .values_list("id", "name", "marketing_id")[:500]
    ]


WINNER_METRICS = ("open_rate", "click_rate", "click_to_open_rate")


def human_winner(
    *, campaign_ids: Iterable[int], metric: str = "click_rate", min_delivered: int = 1
) -> Row | None:
    """The variant (one campaign per variant) with the best rate counting **human events
    only** (:data:`HUMAN_ONLY`: no unknown, privacy-proxy or automated event), for A/B
    tests: a link scanner that clicks every link of one variant must not make it win.

    ``None`` when no variant has ``min_delivered`` delivered messages or the best rate is
    shared (no winner yet). Reads the rollups, like every report.
    """
    if metric not in WINNER_METRICS:
        raise ReportFilterError(f"metric must be one of {', '.join(WINNER_METRICS)}.")
    ids = tuple(sorted(set(campaign_ids)))
    if not ids:
        return None
    rows = [
        row
        for row in split(filters=Filters(campaign_ids=ids), by="campaign", counting=HUMAN_ONLY)
        if row.delivered >= min_delivered and getattr(row, metric) is not None
    ]
    if not rows:
        return None
    rows.sort(key=lambda row: getattr(row, metric), reverse=True)
    if len(rows) > 1 and getattr(rows[0], metric) == getattr(rows[1], metric):
        return None
    return rows[0]
