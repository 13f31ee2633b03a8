"""Rollups: what each message contributes to reports, summed per report key.

Three layers (docs/tracking.md#rollups):

* ``reporting_messagestat`` — one row per message: the key it is counted under (hour
  queued, campaign, recipient domain, channel), its state, its best open and click
  labels and its event counts. **Database triggers** keep it in step with
  ``campaigns_message`` (insert, state/channel change, delete), complaints
  (``campaigns_bounceevent``) and unsubscribes (the audit log's
  ``recipient.unsubscribe`` event, the only per-message record of one); the event
  ingester recomputes the engagement columns from ``reporting_event``.
* ``reporting_campaignrollup`` / ``reporting_domainrollup`` — sums of the message
  rows per (hour, campaign, channel) and per (hour, campaign, domain, channel). A
  trigger on ``reporting_messagestat`` applies the difference of every change.
* ``reporting_eventrollup`` — events per (hour they happened, campaign, kind, label),
  maintained by the ingester.

Why triggers: every path that changes a message (send workers, bounce processing,
lease recovery, cancellation, resend) is covered without a hook in each, in the same
transaction. On PostgreSQL the triggers are statement-level with transition tables:
one aggregate per statement, and rollup rows are locked in key order, so concurrent
workers cannot deadlock on them. :func:`rebuild` recomputes everything from raw data
(messages, contacts, events, bounces, the audit log) with the same formulas.
"""

# Every statement here is assembled from this module's constant table, column and
# metric names (never from input); values travel as bound parameters.
# ruff: noqa: S608

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection, transaction

from reporting.models import AUTOMATION_KINDS, LABEL_RANK

# --- the formulas (one place; triggers, rebuild and tests use them) -----------------------

STATE_SQL = "CASE WHEN {state} IN ('queued', 'sending', 'deferred') THEN 'queued' ELSE {state} END"


def _state_is(*states: str) -> str:
    listed = ", ".join(f"'{state}'" for state in states)
    return f"CASE WHEN {{s}}.state IN ({listed}) THEN 1 ELSE 0 END"


def _label_is(column: str, rank: int) -> str:
    return f"CASE WHEN {{s}}.{column} = {rank} THEN 1 ELSE 0 END"


METRICS: tuple[tuple[str, str], ...] = (
    ("messages", "1"),
    ("queued", _state_is("queued")),
    ("sent", _state_is("sent", "bounced")),
    ("delivered", _state_is("sent")),
    ("failed", _state_is("failed")),
    ("bounced", _state_is("bounced")),
    ("unknown", _state_is("unknown")),
    ("skipped", _state_is("skipped")),
    ("cancelled", _state_is("cancelled")),
    ("opened_human", _label_is("open_label", LABEL_RANK["human"])),
    ("opened_unknown", _label_is("open_label", LABEL_RANK["unknown"])),
    ("opened_automated", _label_is("open_label", LABEL_RANK["automated"])),
    ("opened_privacy_proxy", _label_is("open_label", LABEL_RANK["privacy_proxy"])),
    ("clicked_human", _label_is("click_label", LABEL_RANK["human"])),
    ("clicked_unknown", _label_is("click_label", LABEL_RANK["unknown"])),
    ("clicked_automated", _label_is("click_label", LABEL_RANK["automated"])),
    ("opens_human", "{s}.opens_human"),
    ("opens_unknown", "{s}.opens_unknown"),
    ("opens_automated", "{s}.opens_automated"),
    ("opens_privacy_proxy", "{s}.opens_privacy_proxy"),
    ("clicks_human", "{s}.clicks_human"),
    ("clicks_unknown", "{s}.clicks_unknown"),
    ("clicks_automated", "{s}.clicks_automated"),
    *(
        (f"{kind}s_auto_{automation}", f"{{s}}.{kind}s_auto_{automation}")
        for kind in ("open", "click")
        for automation in AUTOMATION_KINDS
    ),
    ("unsubscribed", "CASE WHEN {s}.unsubscribed THEN 1 ELSE 0 END"),
    ("complained", "CASE WHEN {s}.complained THEN 1 ELSE 0 END"),
)
METRIC_NAMES = tuple(name for name, _ in METRICS)


@dataclass(frozen=True)
class RollupTable:
    table: str
    keys: tuple[str, ...]
    constraint: str
    # Keys computed from the message row (default: the column of the same name); one
    # SQL template per vendor, ``{s}`` standing for the row.
    computed: tuple[tuple[str, str, str], ...] = ()  # (key, PostgreSQL, SQLite)

    def key_sql(self, key: str, alias: str, vendor: str) -> str:
        for name, postgres, sqlite in self.computed:
            if name == key:
                return (postgres if vendor == "postgresql" else sqlite).format(s=alias)
        return f"{alias}.{key}"

    def keys_sql(self, alias: str, vendor: str) -> str:
        return ", ".join(self.key_sql(key, alias, vendor) for key in self.keys)


CAMPAIGN_ROLLUP = RollupTable(
    "reporting_campaignrollup", ("hour", "campaign_id", "channel"), "campaignrollup_key"
)
DOMAIN_ROLLUP = RollupTable(
    "reporting_domainrollup", ("hour", "campaign_id", "domain", "channel"), "domainrollup_key"
)
# The domain split over many campaigns: whole (UTC) months, days, or all time, across
# campaigns and channels (a month holds each domain once however many campaigns went
# out in it).
DOMAIN_MONTH_ROLLUP = RollupTable(
    "reporting_domainmonthrollup",
    ("month", "domain"),
    "domainmonthrollup_key2",
    computed=(
        (
            "month",
            "date_trunc('month', {s}.hour, 'UTC')",
            "strftime('%Y-%m-01 00:00:00', {s}.hour)",
        ),
    ),
)
DOMAIN_WEEK_ROLLUP = RollupTable(
    "reporting_domainweekrollup",
    ("week", "domain"),
    "domainweekrollup_key",
    computed=(
        (
            "week",
            "date_trunc('week', {s}.hour, 'UTC')",
            # SQLite: back to Monday (strftime %w: 0 = Sunday … 6 = Saturday).
            "strftime('%Y-%m-%d 00:00:00', {s}.hour, "
            "'-' || ((CAST(strftime('%w', {s}.hour) AS INTEGER) + 6) % 7) || ' days')",
        ),
    ),
)
DOMAIN_DAY_ROLLUP = RollupTable(
    "reporting_domaindayrollup",
    ("day", "domain"),
    "domaindayrollup_key",
    computed=(
        ("day", "date_trunc('day', {s}.hour, 'UTC')", "strftime('%Y-%m-%d 00:00:00', {s}.hour)"),
    ),
)
DOMAIN_TOTAL_ROLLUP = RollupTable("reporting_domaintotalrollup", ("domain",), "")
ROLLUPS = (
    CAMPAIGN_ROLLUP,
    DOMAIN_ROLLUP,
    DOMAIN_MONTH_ROLLUP,
    DOMAIN_WEEK_ROLLUP,
    DOMAIN_DAY_ROLLUP,
    DOMAIN_TOTAL_ROLLUP,
)

# Engagement of a message from its events, in SQL (the same fold as
# classification.message_engagement: a click implies an open, the best label wins).
_RANK_SQL = (
    "CASE e.label "
    + " ".join(
        f"WHEN '{label}' THEN {rank}" for label, rank in LABEL_RANK.items() if label != "automated"
    )
    + f" ELSE {LABEL_RANK['automated']} END"
)
_RANKS = LABEL_RANK
# Labels with per-message event counts (``<kind>s_<label>``); no click is ever labelled
# privacy_proxy (image proxies do not follow links: ingest stores such a verdict unknown).
EVENT_LABELS = {
    "open": ("human", "unknown", "automated", "privacy_proxy"),
    "click": ("human", "unknown", "automated"),
}
KIND_COLUMNS = tuple(
    f"{kind}s_auto_{automation}" for kind in ("open", "click") for automation in AUTOMATION_KINDS
)
ENGAGEMENT_COLUMNS = (
    "open_label",
    "click_label",
    "opens_human",
    "opens_unknown",
    "opens_automated",
    "opens_privacy_proxy",
    "clicks_human",
    "clicks_unknown",
    "clicks_automated",
    *KIND_COLUMNS,
)


def _event_count_sql(kind: str, label: str) -> str:
    return f"SUM(CASE WHEN e.kind = '{kind}' AND e.label = '{label}' THEN 1 ELSE 0 END)"


def _kind_count_sql(kind: str, automation: str) -> str:
    return (
        f"SUM(CASE WHEN e.kind = '{kind}' AND e.label = 'automated' "
        f"AND e.automation_kind = '{automation}' THEN 1 ELSE 0 END)"
    )


def engagement_select(where: str) -> str:
    """``SELECT message_id, <engagement columns> FROM reporting_event e WHERE … GROUP BY``.

    Automated opens by kind (``opens_auto_<kind>``) count the open events of that kind
    plus an implied automated open, at the kind of the click that implies it.

    Total opens per label count the open events plus the open a click implies: a
    message whose best label (``open_label``, clicks included) has no open event of
    that label counts one open at it. So for every label, and every set of counted
    labels, unique opened ≤ total opens (the report showed 47 opened above 45 opens
    when clicks without a pixel load were counted as opened but not as opens).
    """
    counts = [
        f"{_event_count_sql(kind, label)} AS {kind}s_{label}"
        if kind == "click"
        else (
            f"{_event_count_sql(kind, label)} + CASE WHEN MAX({_RANK_SQL}) = {_RANKS[label]} "
            f"AND {_event_count_sql(kind, label)} = 0 THEN 1 ELSE 0 END AS {kind}s_{label}"
        )
        for kind in ("open", "click")
        for label in EVENT_LABELS[kind]
    ]
    # The open an automated click implies takes that click's kind (the alphabetically
    # first when several), so automated opens by kind add up to opens_automated.
    implied_kind = (
        f"CASE WHEN MAX({_RANK_SQL}) = {_RANKS['automated']} "
        f"AND {_event_count_sql('open', 'automated')} = 0 "
        "THEN MIN(CASE WHEN e.kind = 'click' AND e.label = 'automated' "
        "THEN e.automation_kind END) END"
    )
    counts += [
        f"{_kind_count_sql('open', automation)} + CASE WHEN {implied_kind} = '{automation}' "
        f"THEN 1 ELSE 0 END AS opens_auto_{automation}"
        for automation in AUTOMATION_KINDS
    ]
    counts += [
        f"{_kind_count_sql('click', automation)} AS clicks_auto_{automation}"
        for automation in AUTOMATION_KINDS
    ]
    columns = ",\n       ".join(counts)
    return (
        f"SELECT e.message_id, MAX({_RANK_SQL}) AS open_label,\n"
        f"       COALESCE(MAX(CASE WHEN e.kind = 'click' THEN {_RANK_SQL} END), 0) "
        f"AS click_label,\n       {columns}\n"
        f"  FROM reporting_event e WHERE {where} GROUP BY e.message_id"
    )


def _metric_values(alias: str, sign: str = "") -> str:
    return ", ".join(f"{sign}({expr.format(s=alias)})" for _, expr in METRICS)


def _upsert_sql(rollup: RollupTable, source: str) -> str:
    """Add the per-key sums of ``source`` (keys + metric columns) to ``rollup``."""
    keys = ", ".join(rollup.keys)
    metrics = ", ".join(METRIC_NAMES)
    sums = ", ".join(f"SUM({name})" for name in METRIC_NAMES)
    nonzero = " OR ".join(f"SUM({name}) <> 0" for name in METRIC_NAMES)
    updates = ", ".join(
        f"{name} = {rollup.table}.{name} + EXCLUDED.{name}" for name in METRIC_NAMES
    )
    return (
        f"INSERT INTO {rollup.table} ({keys}, {metrics})\n"
        f"SELECT {keys}, {sums} FROM ({source}) AS d ({keys}, {metrics})\n"
        f" GROUP BY {keys} HAVING {nonzero} ORDER BY {keys}\n"
        f"ON CONFLICT ({keys}) DO UPDATE SET {updates}"
    )


# --- PostgreSQL triggers ----------------------------------------------------------------

_SKIP_DURING_REBUILD = (
    "IF current_setting('luxmail.rollup_rebuild', true) = 'on' THEN RETURN NULL; END IF;"
)


def _pg_function(name: str, body: str, declare: str = "") -> str:
    variables = f"DECLARE\n{declare}\n" if declare else ""
    return (
        f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        f"{variables}BEGIN\n{_SKIP_DURING_REBUILD}\n{body}\nRETURN NULL;\nEND $$;"
    )


def _pg_trigger(
    name: str, event: str, table: str, referencing: str, level: str = "STATEMENT"
) -> str:
    return (
        f"DROP TRIGGER IF EXISTS {name} ON {table};\n"
        f"CREATE TRIGGER {name} AFTER {event} ON {table} {referencing} "
        f"FOR EACH {level} EXECUTE FUNCTION {name}();"
    )


JOURNAL = "reporting_rollupjournal"
JOURNAL_KEYS = ("hour", "campaign_id", "domain", "channel")


def _pg_stat_rollup(sources: list[tuple[str, str]]) -> str:
    """Append the statement's net changes per finest key to the journal (no upsert: no
    shared row is locked, so workers sending the same campaign never wait on each
    other; :func:`fold` moves them into the rollups)."""
    keys = ", ".join(JOURNAL_KEYS)
    metrics = ", ".join(METRIC_NAMES)
    parts = [
        f"SELECT {', '.join('s.' + key for key in JOURNAL_KEYS)}, {_metric_values('s', sign)} "
        f"FROM {table} s"
        for table, sign in sources
    ]
    sums = ", ".join(f"SUM({name})" for name in METRIC_NAMES)
    nonzero = " OR ".join(f"SUM({name}) <> 0" for name in METRIC_NAMES)
    return (
        f"INSERT INTO {JOURNAL} ({keys}, {metrics})\n"
        f"SELECT {keys}, {sums} FROM ({' UNION ALL '.join(parts)}) AS d ({keys}, {metrics})\n"
        f" GROUP BY {keys} HAVING {nonzero};"
    )


_PG_MESSAGE_STATE = STATE_SQL.format(state="n.state")
_PG_OLD_STATE = STATE_SQL.format(state="o.state")
# The rows whose reported state or channel changed, as a set difference (hashed, linear
# in the statement's rows). A join of the two transition tables was planned as a nested
# loop once PL/pgSQL cached a generic plan from small statements: a 500-row claim then
# compared 250,000 pairs — 77 ms of a claim's 82 (median, measured on the send bench).
_PG_CHANGED = (
    f"(SELECT n.id, {_PG_MESSAGE_STATE} AS state, n.channel FROM new_rows n "
    f"EXCEPT SELECT o.id, {_PG_OLD_STATE}, o.channel FROM old_rows o) c"
)

PG_INSTALL = "\n".join(
    [
        # messagestat -> rollups
        _pg_function("reporting_stat_ins", _pg_stat_rollup([("new_rows", "")])),
        _pg_trigger(
            "reporting_stat_ins",
            "INSERT",
            "reporting_messagestat",
            "REFERENCING NEW TABLE AS new_rows",
        ),
        _pg_function("reporting_stat_upd", _pg_stat_rollup([("new_rows", ""), ("old_rows", "-")])),
        _pg_trigger(
            "reporting_stat_upd",
            "UPDATE",
            "reporting_messagestat",
            "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
        ),
        _pg_function("reporting_stat_del", _pg_stat_rollup([("old_rows", "-")])),
        _pg_trigger(
            "reporting_stat_del",
            "DELETE",
            "reporting_messagestat",
            "REFERENCING OLD TABLE AS old_rows",
        ),
        # campaigns_message -> messagestat
        _pg_function(
            "reporting_message_ins",
            "INSERT INTO reporting_messagestat (message_id, campaign_id, hour, domain, channel, "
            "state, open_label, click_label, opens_human, opens_unknown, opens_automated, "
            "clicks_human, clicks_unknown, clicks_automated, unsubscribed, complained)\n"
            "SELECT n.id, n.campaign_id, date_trunc('hour', n.queued_at, 'UTC'), "
            f"COALESCE(c.domain, ''), n.channel, {_PG_MESSAGE_STATE}, "
            "0, 0, 0, 0, 0, 0, 0, 0, false, false\n"
            "  FROM new_rows n LEFT JOIN contacts_contact c ON c.id = n.contact_id\n"
            " ORDER BY n.id ON CONFLICT (message_id) DO NOTHING;",
        ),
        _pg_trigger(
            "reporting_message_ins",
            "INSERT",
            "campaigns_message",
            "REFERENCING NEW TABLE AS new_rows",
        ),
        # Only rows whose reported state or channel changed touch messagestat; claims,
        # leases and queued -> sending -> deferred moves do not. Rows are locked in id
        # order (the ingester does the same), so the two never deadlock. The changed
        # rows are computed once, as arrays (it was three set differences per
        # statement: the test, the lock and the update each computed their own).
        _pg_function(
            "reporting_message_upd",
            "SELECT array_agg(c.id ORDER BY c.id), array_agg(c.state ORDER BY c.id), "
            "array_agg(c.channel ORDER BY c.id)\n"
            f"  INTO changed_ids, changed_states, changed_channels FROM {_PG_CHANGED};\n"
            # Claims and lease renewals change neither: they stop here.
            "IF changed_ids IS NULL THEN RETURN NULL; END IF;\n"
            "PERFORM 1 FROM reporting_messagestat s WHERE s.message_id = ANY(changed_ids) "
            "ORDER BY s.message_id FOR UPDATE;\n"
            "IF NOT FOUND THEN RETURN NULL; END IF;\n"
            "UPDATE reporting_messagestat s SET state = c.state, channel = c.channel\n"
            "  FROM unnest(changed_ids, changed_states, changed_channels)"
            " AS c(id, state, channel)\n"
            " WHERE s.message_id = c.id;",
            declare="changed_ids bigint[];\nchanged_states text[];\nchanged_channels text[];",
        ),
        _pg_trigger(
            "reporting_message_upd",
            "UPDATE",
            "campaigns_message",
            "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
        ),
        _pg_function(
            "reporting_message_del",
            # A retention purge (luxmail/retention.py) deletes delivery records but keeps
            # what they added to reports: the message's report row and the rollups stay.
            "IF current_setting('luxmail.retention_purge', true) = 'on' THEN RETURN NULL; "
            "END IF;\n"
            "DELETE FROM reporting_messagestat WHERE message_id IN (SELECT id FROM old_rows);",
        ),
        _pg_trigger(
            "reporting_message_del",
            "DELETE",
            "campaigns_message",
            "REFERENCING OLD TABLE AS old_rows",
        ),
        # complaints and unsubscribes (row level: rare events)
        _pg_function(
            "reporting_complaint",
            "UPDATE reporting_messagestat SET complained = true\n"
            " WHERE message_id = NEW.message_id AND NOT complained;",
        ),
        "DROP TRIGGER IF EXISTS reporting_complaint ON campaigns_bounceevent;\n"
        "CREATE TRIGGER reporting_complaint AFTER INSERT ON campaigns_bounceevent FOR EACH ROW\n"
        " WHEN (NEW.kind = 'complaint' AND NEW.message_id IS NOT NULL)"
        " EXECUTE FUNCTION reporting_complaint();",
        _pg_function(
            "reporting_unsubscribe",
            "UPDATE reporting_messagestat SET unsubscribed = true\n"
            " WHERE message_id = (NEW.details->>'message_id')::bigint AND NOT unsubscribed;",
        ),
        "DROP TRIGGER IF EXISTS reporting_unsubscribe ON luxmail_auditevent;\n"
        "CREATE TRIGGER reporting_unsubscribe AFTER INSERT ON luxmail_auditevent FOR EACH ROW\n"
        " WHEN (NEW.action = 'recipient.unsubscribe'"
        " AND (NEW.details->>'message_id') ~ '^[0-9]+$')"
        " EXECUTE FUNCTION reporting_unsubscribe();",
    ]
)

_PG_TRIGGERS = (
    ("reporting_stat_ins", "reporting_messagestat"),
    ("reporting_stat_upd", "reporting_messagestat"),
    ("reporting_stat_del", "reporting_messagestat"),
    ("reporting_message_ins", "campaigns_message"),
    ("reporting_message_upd", "campaigns_message"),
    ("reporting_message_del", "campaigns_message"),
    ("reporting_complaint", "campaigns_bounceevent"),
    ("reporting_unsubscribe", "luxmail_auditevent"),
)
PG_UNINSTALL = "\n".join(
    f"DROP TRIGGER IF EXISTS {name} ON {table}; DROP FUNCTION IF EXISTS {name}();"
    for name, table in _PG_TRIGGERS
)


# --- SQLite triggers (make run only: one writer, row-level triggers) ----------------------


def _sqlite_upsert(rollup: RollupTable, alias: str, sign: str) -> str:
    keys = ", ".join(rollup.keys)
    metrics = ", ".join(METRIC_NAMES)
    values = rollup.keys_sql(alias, "sqlite") + ", " + _metric_values(alias, sign)
    updates = ", ".join(
        f"{name} = {rollup.table}.{name} + excluded.{name}" for name in METRIC_NAMES
    )
    return (
        f"INSERT INTO {rollup.table} ({keys}, {metrics}) VALUES ({values})\n"
        f"  ON CONFLICT ({keys}) DO UPDATE SET {updates};"
    )


def _sqlite_trigger(name: str, event: str, table: str, body: str, when: str = "") -> str:
    condition = f" WHEN {when}" if when else ""
    return (
        f"DROP TRIGGER IF EXISTS {name};\n"
        f"CREATE TRIGGER {name} AFTER {event} ON {table} FOR EACH ROW{condition}\n"
        f"BEGIN\n{body}\nEND;"
    )


_SQLITE_NEW_STATE = STATE_SQL.format(state="NEW.state")
_SQLITE_OLD_STATE = STATE_SQL.format(state="OLD.state")

SQLITE_INSTALL = [
    _sqlite_trigger(
        "reporting_stat_ins",
        "INSERT",
        "reporting_messagestat",
        "\n".join(_sqlite_upsert(rollup, "NEW", "") for rollup in ROLLUPS),
    ),
    _sqlite_trigger(
        "reporting_stat_upd",
        "UPDATE",
        "reporting_messagestat",
        "\n".join(
            _sqlite_upsert(rollup, "OLD", "-") + "\n" + _sqlite_upsert(rollup, "NEW", "")
            for rollup in ROLLUPS
        ),
    ),
    _sqlite_trigger(
        "reporting_stat_del",
        "DELETE",
        "reporting_messagestat",
        "\n".join(_sqlite_upsert(rollup, "OLD", "-") for rollup in ROLLUPS),
    ),
    _sqlite_trigger(
        "reporting_message_ins",
        "INSERT",
        "campaigns_message",
        "INSERT INTO reporting_messagestat (message_id, campaign_id, hour, domain, channel, "
        "state, open_label, click_label, opens_human, opens_unknown, opens_automated, "
        "clicks_human, clicks_unknown, clicks_automated, unsubscribed, complained)\n"
        "VALUES (NEW.id, NEW.campaign_id, strftime('%Y-%m-%d %H:00:00', NEW.queued_at), "
        "COALESCE((SELECT domain FROM contacts_contact WHERE id = NEW.contact_id), ''), "
        f"NEW.channel, {_SQLITE_NEW_STATE}, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)\n"
        "ON CONFLICT (message_id) DO NOTHING;",
    ),
    _sqlite_trigger(
        "reporting_message_upd",
        "UPDATE OF state, channel",
        "campaigns_message",
        f"UPDATE reporting_messagestat SET state = {_SQLITE_NEW_STATE}, channel = NEW.channel\n"
        " WHERE message_id = NEW.id;",
        when=f"({_SQLITE_NEW_STATE}) <> ({_SQLITE_OLD_STATE}) OR NEW.channel <> OLD.channel",
    ),
    _sqlite_trigger(
        "reporting_message_del",
        "DELETE",
        "campaigns_message",
        "DELETE FROM reporting_messagestat WHERE message_id = OLD.id;",
    ),
    _sqlite_trigger(
        "reporting_complaint",
        "INSERT",
        "campaigns_bounceevent",
        "UPDATE reporting_messagestat SET complained = 1\n"
        " WHERE message_id = NEW.message_id AND NOT complained;",
        when="NEW.kind = 'complaint' AND NEW.message_id IS NOT NULL",
    ),
    _sqlite_trigger(
        "reporting_unsubscribe",
        "INSERT",
        "luxmail_auditevent",
        "UPDATE reporting_messagestat SET unsubscribed = 1\n"
        " WHERE message_id = json_extract(NEW.details, '$.message_id') AND NOT unsubscribed;",
        when="NEW.action = 'recipient.unsubscribe'",
    ),
]
SQLITE_UNINSTALL = [f"DROP TRIGGER IF EXISTS {name};" for name, _ in _PG_TRIGGERS]


def install_triggers() -> None:
    """Create (or replace) every rollup trigger on the current database."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(PG_INSTALL)
            return
        for script in SQLITE_INSTALL:
            for statement in _split_sqlite(script):
                cursor.execute(statement)


def _split_sqlite(script: str) -> list[str]:
    # "DROP TRIGGER …;" then one "CREATE TRIGGER … BEGIN … END;" (its body has semicolons).
    drop, _, create = script.partition(";\n")
    return [drop + ";", create]


def uninstall_triggers() -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(PG_UNINSTALL)
        else:
            for statement in SQLITE_UNINSTALL:
                cursor.execute(statement)


# --- rebuild from raw data ---------------------------------------------------------------

# Serializes the event ingester and rebuilds (PostgreSQL advisory lock, "LMINGEST").
INGEST_LOCK_ID = 0x4C4D494E47455354


@dataclass(frozen=True)
class RebuildResult:
    messages: int
    campaign_rows: int
    domain_rows: int
    event_rows: int


def _dialect() -> dict[str, str]:
    if connection.vendor == "postgresql":
        return {
            "hour": "date_trunc('hour', {col}, 'UTC')",
            "unsubscribed_ids": (
                "SELECT DISTINCT (a.details->>'message_id')::bigint AS message_id "
                "FROM luxmail_auditevent a WHERE a.action = 'recipient.unsubscribe' "
                "AND (a.details->>'message_id') ~ '^[0-9]+$'"
            ),
            "true": "true",
            "false": "false",
        }
    return {
        "hour": "strftime('%Y-%m-%d %H:00:00', {col})",
        "unsubscribed_ids": (
            "SELECT DISTINCT CAST(json_extract(a.details, '$.message_id') AS INTEGER) "
            "AS message_id FROM luxmail_auditevent a WHERE a.action = 'recipient.unsubscribe' "
            "AND json_extract(a.details, '$.message_id') IS NOT NULL"
        ),
        "true": "1",
        "false": "0",
    }


def _fresh_stat_sql() -> str:
    d = _dialect()
    state = STATE_SQL.format(state="m.state")
    engagement = ", ".join(f"COALESCE(e.{name}, 0)" for name in ENGAGEMENT_COLUMNS)
    return (
        "SELECT m.id, m.campaign_id, "
        f"COALESCE(k.hour, {d['hour'].format(col='m.queued_at')}), "
        "COALESCE(k.domain, c.domain, ''), m.channel, "
        f"{state}, {engagement}, "
        f"CASE WHEN u.message_id IS NULL THEN {d['false']} ELSE {d['true']} END, "
        f"CASE WHEN b.message_id IS NULL THEN {d['false']} ELSE {d['true']} END\n"
        "  FROM campaigns_message m\n"
        "  LEFT JOIN reporting_rebuild_keys k ON k.message_id = m.id\n"
        "  LEFT JOIN contacts_contact c ON c.id = m.contact_id\n"
        f"  LEFT JOIN ({engagement_select(d['true'])}) e ON e.message_id = m.id\n"
        f"  LEFT JOIN ({d['unsubscribed_ids']}) u ON u.message_id = m.id\n"
        "  LEFT JOIN (SELECT DISTINCT message_id FROM campaigns_bounceevent "
        "WHERE kind = 'complaint' AND message_id IS NOT NULL) b ON b.message_id = m.id"
    )


STAT_COLUMNS = (
    "message_id",
    "campaign_id",
    "hour",
    "domain",
    "channel",
    "state",
    *ENGAGEMENT_COLUMNS,
    "unsubscribed",
    "complained",
)


def _rollup_from_stats_sql(rollup: RollupTable) -> str:
    keys = rollup.keys_sql("s", connection.vendor)
    sums = ", ".join(f"SUM({expr.format(s='s')})" for _, expr in METRICS)
    return (
        f"INSERT INTO {rollup.table} ({', '.join(rollup.keys)}, {', '.join(METRIC_NAMES)}) "
        f"SELECT {keys}, {sums} FROM reporting_messagestat s GROUP BY {keys} "
        # In key order: a campaign's (or a month's) rows end up next to each other on
        # disk, as incremental maintenance leaves them, so reading one is a few pages.
        f"ORDER BY {keys}"
    )


def _event_rollup_sql() -> str:
    hour = _dialect()["hour"].format(col="e.occurred_at")
    return (
        "INSERT INTO reporting_eventrollup (hour, campaign_id, kind, label, events) "
        f"SELECT {hour}, e.campaign_id, e.kind, e.label, COUNT(*) FROM reporting_event e "
        f"GROUP BY {hour}, e.campaign_id, e.kind, e.label"
    )


# Serializes folds (PostgreSQL advisory lock, "LMFOLD").
FOLD_LOCK_ID = 0x4C4D464F4C44


def fold() -> int:
    """Move the journal's sums into every rollup table; returns the journal rows folded.

    One fold at a time (others return 0 at once); rows appended meanwhile by other
    transactions stay for the next fold. Rollup rows are written in key order. Run by
    the event ingester's periodic task; a no-op on SQLite, whose triggers update the
    rollups directly.
    """
    if connection.vendor != "postgresql":
        return 0
    keys = ", ".join(JOURNAL_KEYS)
    metrics = ", ".join(METRIC_NAMES)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [FOLD_LOCK_ID])
        if not cursor.fetchone()[0]:
            return 0
        cursor.execute(
            "CREATE TEMP TABLE reporting_fold ON COMMIT DROP AS "
            f"WITH taken AS (DELETE FROM {JOURNAL} RETURNING {keys}, {metrics}) "
            f"SELECT {keys}, {', '.join(f'SUM({name}) AS {name}' for name in METRIC_NAMES)} "
            f"FROM taken GROUP BY {keys}"
        )
        folded = cursor.rowcount
        if folded:
            for rollup in ROLLUPS:
                source = (
                    f"SELECT {rollup.keys_sql('s', 'postgresql')}, "
                    f"{', '.join('s.' + name for name in METRIC_NAMES)} FROM reporting_fold s"
                )
                cursor.execute(_upsert_sql(rollup, source))
        cursor.execute("DROP TABLE reporting_fold")
    return int(folded)


def rebuild() -> RebuildResult:
    """Recompute ``reporting_messagestat`` and every rollup from raw data, in one transaction.

    Raw data: messages (state, channel), events (engagement), complaints
    (``campaigns_bounceevent``), unsubscribes (the audit log). The hour and domain a
    message was counted under when it was queued are kept (a contact who changed
    address since does not move old messages); messages without a row get them from
    their contact. Send workers and the ingester wait while it runs (table lock and the
    ingestion lock); the result equals what incremental maintenance produces.
    """
    postgres = connection.vendor == "postgresql"
    stat_columns = ", ".join(STAT_COLUMNS)
    with transaction.atomic(), connection.cursor() as cursor:
        if postgres:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [INGEST_LOCK_ID])
            cursor.execute("LOCK TABLE reporting_messagestat IN EXCLUSIVE MODE")
            cursor.execute("SET LOCAL luxmail.rollup_rebuild = 'on'")
            cursor.execute("SET LOCAL work_mem = '256MB'")
        else:
            uninstall_triggers()
        cursor.execute("DROP TABLE IF EXISTS reporting_rebuild_keys")
        cursor.execute(
            "CREATE TEMP TABLE reporting_rebuild_keys AS "
            "SELECT message_id, hour, domain FROM reporting_messagestat"
        )
        if postgres:
            cursor.execute("CREATE INDEX ON reporting_rebuild_keys (message_id)")
            cursor.execute("ANALYZE reporting_rebuild_keys")
        cursor.execute(
            "DELETE FROM reporting_messagestat"
            if not postgres
            else "TRUNCATE reporting_messagestat"
        )
        cursor.execute(f"INSERT INTO reporting_messagestat ({stat_columns}) {_fresh_stat_sql()}")
        messages = cursor.rowcount
        cursor.execute("DROP TABLE reporting_rebuild_keys")
        # The journal's changes are in the recomputed rows already.
        cursor.execute(f"DELETE FROM {JOURNAL}" if not postgres else f"TRUNCATE {JOURNAL}")
        counts = []
        for rollup in ROLLUPS:
            cursor.execute(
                f"DELETE FROM {rollup.table}" if not postgres else f"TRUNCATE {rollup.table}"
            )
            cursor.execute(_rollup_from_stats_sql(rollup))
            counts.append(cursor.rowcount)
        cursor.execute(
            "DELETE FROM reporting_eventrollup"
            if not postgres
            else "TRUNCATE reporting_eventrollup"
        )
        cursor.execute(_event_rollup_sql())
        event_rows = cursor.rowcount
        if postgres:
            # SET LOCAL lasts until the *transaction* ends, which is later than this
            # block when the caller has a transaction open: switch the triggers back on.
            cursor.execute("SET LOCAL luxmail.rollup_rebuild = 'off'")
        else:
            install_triggers()
    return RebuildResult(messages, counts[0], counts[1], event_rows)
