"""Scale benchmark (issue 16 §3): 1 M contacts with PHI, 10 M messages and 30 M events
across 12 months on PostgreSQL, then the queries that must stay fast at that size.

    .venv/bin/python bench/scale.py --scale 0.01     # 10 k contacts, 100 k messages: a minute
    .venv/bin/python bench/scale.py --scale 0.1      # 100 k / 1 M / 3 M: ~4 min
    .venv/bin/python bench/scale.py --keep           # full size, kept: ~15 GB of disk
    .venv/bin/python bench/scale.py --measure-only   # measure the kept luxmail_scale again

In a dedicated database (``luxmail_scale``, created afresh and migrated, dropped at the
end unless ``--keep``; ``--measure-only`` only measures a kept one):

1. the secondary indexes, unique constraints and foreign keys of the five loaded tables
   are read from the catalog and dropped (primary keys stay), to be rebuilt after the
   load, as a bulk load does; the rollup triggers are off;
2. contacts are written as ``contacts.upsert`` writes a new one, without model
   instances: identity and profile sealed with ``crypto.sealed_row`` (AES-GCM per field,
   bound to the row's UUID), the e-mail blind index, the tokens
   ``attributes.profile_tokens | attributes.identity_tokens``; COPY text in
   ``--workers`` processes; every column list comes from the models' ``_meta``, columns
   the generator does not know get the field's default (``tests/test_bench_scale.py``
   loads a few rows into the test schema, so drift fails there);
3. 120 campaigns (10 a month over 12 months) with their messages and tracking events,
   generated in the server (``INSERT … SELECT … generate_series`` per campaign, column
   list from ``_meta`` likewise), the newest campaign still sending with 30 % of its
   messages queued; then the indexes and constraints are rebuilt, the report rows and
   rollups built once with ``reporting.rollups.rebuild`` (``manage.py rebuild_rollups``)
   and the database vacuumed and analyzed;
4. it prints the median of ``--runs`` runs of: the segment count with 3 PHI conditions,
   every split report asked for (campaign, subject, from address, recipient domain,
   report field; human only and all events) over everything and the last 30 days, a
   contact's full history (``reporting.selectors.contact_history``), the send queue's
   claim (``campaigns.sending.queue.claim``, rolled back so each run claims the same
   batch) and its row selection alone (wall clock and ``EXPLAIN ANALYZE`` plan +
   execute); the generation time per phase, the disk used, and the machine load.

A database kept from before an upgrade that changes the contact tokens (token layout,
``contacts.tokens.TOKEN_VERSION``) is re-tokenized with ``manage.py contacts_reindex``
(``DATABASE_URL`` pointing at it, ``LUXMAIL_ENV=test`` for the bench keys) before
``--measure-only``; until then the segment count runs on the old layout's tokens.

Targets (issue 16): segment < 100 ms, each split < 100 ms, history < 50 ms, claim < 5 ms.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import multiprocessing
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import PG_URL, median_seconds, setup_django, system_load
from bench.segments import RULES, ZIP3_WEIGHTS, synthetic_profile

DATABASE = "luxmail_scale"
FULL_CONTACTS = 1_000_000
FULL_MESSAGES = 10_000_000
FULL_EVENTS = 30_000_000
MONTHS = 12
PER_MONTH = 10
CAMPAIGNS = MONTHS * PER_MONTH
CONTACT_CHUNK = 5_000
PAGE_ROWS = 200
CHANNELS = ("tls",) * 90 + ("smime",) * 2 + ("pgp",) * 1 + ("portal",) * 7
STATES = ("sent",) * 90 + ("bounced",) * 4 + ("failed",) * 3 + ("skipped",) * 2 + ("unknown",)
LABELS = ("human",) * 55 + ("unknown",) * 5 + ("privacy_proxy",) * 25 + ("automated",) * 15
SPLITS = ("campaign", "subject", "from_address", "domain", "report_field")
TARGETS_MS = {"segment": 100, "split": 100, "history": 50, "claim": 5}


def log(message: str) -> None:
    print(message, flush=True)


# --- COPY with column lists from the models ------------------------------------------------


def _escape(value: Any) -> str:
    """One value in COPY text format."""
    if value is None:
        return r"\N"
    if type(value).__name__ == "Binary" and hasattr(value, "obj"):  # psycopg wrapper
        value = value.obj
    if isinstance(value, bytes | memoryview):
        return "\\\\x" + bytes(value).hex()
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if hasattr(value, "dumps") and hasattr(value, "obj"):  # psycopg Json/Jsonb wrapper
        value = value.dumps(value.obj)
        value = value.decode() if isinstance(value, bytes) else value
    if isinstance(value, list):
        return "{" + ",".join(str(v) for v in value) + "}"
    text = str(value)
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


class RowFormat:
    """COPY lines for ``model`` from a dict of the columns a generator knows (values
    already in COPY text format); every other column gets its field's default, computed
    once, so a new column with a default needs no change here and a new NOT NULL column
    without one fails the load instead of being silently skipped."""

    def __init__(self, model: Any, known: set[str]) -> None:
        from django.db import connection

        self.model = model
        fields = model._meta.concrete_fields
        self.columns = [f.column for f in fields]
        unknown = known - set(self.columns)
        if unknown:
            raise SystemExit(f"{model._meta.db_table} has no column {sorted(unknown)}")
        parts = []
        for f in fields:
            if f.column in known:
                parts.append("{" + f.column + "}")
                continue
            value = _escape(f.get_db_prep_save(f.get_default(), connection))
            parts.append(value.replace("{", "{{").replace("}", "}}"))
        self.template = "\t".join(parts) + "\n"

    def line(self, values: dict[str, Any]) -> str:
        return self.template.format_map(values)

    def copy(self, lines: Iterable[str]) -> int:
        from django.db import connection

        columns = ", ".join(connection.ops.quote_name(c) for c in self.columns)
        count = 0
        with connection.cursor() as cursor:
            sql = f"COPY {self.model._meta.db_table} ({columns}) FROM STDIN"
            with cursor.cursor.copy(sql) as copy:
                buffer = []
                for line in lines:
                    buffer.append(line)
                    if len(buffer) >= 10_000:
                        copy.write("".join(buffer))
                        count += len(buffer)
                        buffer = []
                copy.write("".join(buffer))
                count += len(buffer)
        return count


class InsertSelect:
    """``INSERT INTO <model's table> (<every concrete column>) SELECT …`` with the SQL
    expressions a generator knows; every other column gets its field's default as a
    bound value (the auto primary key is left to its identity sequence), so the column
    list follows the model like :class:`RowFormat`'s."""

    def __init__(self, model: Any, expressions: dict[str, str]) -> None:
        from django.db import connection

        fields = model._meta.concrete_fields
        unknown = set(expressions) - {f.column for f in fields}
        if unknown:
            raise SystemExit(f"{model._meta.db_table} has no column {sorted(unknown)}")
        columns, values = [], []
        self.defaults: dict[str, Any] = {}
        for f in fields:
            if f.column in expressions:
                columns.append(connection.ops.quote_name(f.column))
                values.append(expressions[f.column])
            elif f.primary_key:
                continue  # the identity sequence numbers the rows
            else:
                columns.append(connection.ops.quote_name(f.column))
                values.append(f"%(default_{f.column})s")
                self.defaults[f"default_{f.column}"] = f.get_db_prep_save(
                    f.get_default(), connection
                )
        self.head = f"INSERT INTO {model._meta.db_table} ({', '.join(columns)}) SELECT "
        self.values = ", ".join(values)

    def execute(self, source: str, params: dict[str, Any]) -> int:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(f"{self.head}{self.values} FROM {source}", {**self.defaults, **params})
            return int(cursor.rowcount)


# --- generation ----------------------------------------------------------------------------


def _bytea(value: bytes) -> str:
    return "\\\\x" + value.hex()


def _contacts_chunk(job: tuple[int, int, int]) -> int:
    """Contacts ``[first, last)`` with PHI profiles and segment tokens (one worker).

    What ``contacts.upsert`` writes for a new contact, without model instances: the
    identity and the profile sealed with ``crypto.sealed_row`` (AES-GCM per field, bound
    to the row's UUID), the e-mail blind index, and the tokens of the profile and the
    name (``attributes.profile_tokens | attributes.identity_tokens``), COPYed as text.
    """
    from django.db import connection, transaction

    from contacts import attributes
    from contacts.models import Contact, ContactProfile, ContactTokenSet
    from luxmail import crypto

    first, last, seed = job
    rng = random.Random(seed + first)
    today = dt.date.today()
    zip5s = {z3: [f"{z3}{n:02d}" for n in range(0, 100, 3)] for z3 in ZIP3_WEIGHTS}
    now = dt.datetime.now(dt.UTC).isoformat()
    identity = ("email", "first_name", "last_name")
    phi = [f.name for f in crypto.encrypted_fields(ContactProfile)]
    contact_format = RowFormat(
        Contact,
        {"id", "uuid", "email_bidx", "domain", *identity, "status_changed_at"}
        | {"created_at", "updated_at"},
    )
    profile_format = RowFormat(ContactProfile, {"contact_id", "uuid", *phi, "updated_at"})
    tokens_format = RowFormat(ContactTokenSet, {"contact_id", "tokens"})
    # The names repeat (First0…First996): their tokens are computed once per name.
    name_tokens = functools.lru_cache(maxsize=4096)(
        lambda first, last: frozenset(
            attributes.identity_tokens(first_name=first, last_name=last, phone=None)
        )
    )
    contacts, profiles, tokensets = [], [], []
    for pk in range(first, last):
        row_uuid = uuid.UUID(int=rng.getrandbits(128), version=4)
        domain = DOMAINS[pk % len(DOMAINS)]
        email = f"patient{pk}@{domain}"
        names = {"first_name": f"First{pk % 997}", "last_name": f"Last{pk % 1009}"}
        sealed = crypto.sealed_row(Contact, row_uuid, {"email": email, **names})
        contacts.append(
            contact_format.line(
                {
                    "id": pk,
                    "uuid": row_uuid,
                    "email_bidx": _bytea(crypto.blind_index("email", email)),
                    "domain": domain,
                    **{name: _bytea(sealed[name]) for name in identity},  # type: ignore[arg-type]
                    "status_changed_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        )
        values = synthetic_profile(rng, today, zip5s)
        plain = {name: values.get(name) for name in phi}
        sealed = crypto.sealed_row(ContactProfile, row_uuid, plain)
        row = {name: _bytea(v) if v is not None else r"\N" for name, v in sealed.items()}
        profiles.append(
            profile_format.line({**row, "contact_id": pk, "uuid": row_uuid, "updated_at": now})
        )
        tokens = attributes.profile_tokens(values, {}, {}) | name_tokens(
            names["first_name"], names["last_name"]
        )
        tokensets.append(
            tokens_format.line(
                {"contact_id": pk, "tokens": "{" + ",".join(map(str, sorted(tokens))) + "}"}
            )
        )
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit = off")
        contact_format.copy(contacts)
        profile_format.copy(profiles)
        tokens_format.copy(tokensets)
    return last - first


DOMAINS = [f"mail{n}.example" for n in range(40)] + ["example.org", "example.com"] * 20


def _plan(messages: int, contacts: int) -> list[dict[str, Any]]:
    """Per campaign: id, start, message id range, contact stride (deterministic)."""
    per = messages // CAMPAIGNS
    return [
        {"index": n, "first_id": n * per + 1, "count": per, "offset": (n * 7919) % contacts}
        for n in range(CAMPAIGNS)
    ]


# One campaign's messages, generated in the server: ``i`` numbers them from 0; the state
# is queued for 30 % of the newest (still sending) campaign, else cycles through STATES.
_MESSAGE_SOURCE = """(
  SELECT i, CASE WHEN %(sending)s AND i %% 10 < 3 THEN 'queued'
                 ELSE (%(states)s::text[])[1 + (i * 7 + %(index)s) %% %(n_states)s] END AS state
    FROM generate_series(0, %(count)s - 1) AS i) AS g"""
_MESSAGE_COLUMNS = {
    "id": "%(first_id)s + g.i",
    "campaign_id": "%(campaign_id)s",
    "contact_id": "1 + (%(offset)s + g.i) %% %(contacts)s",
    "state": "g.state",
    "attempts": "CASE WHEN g.state = 'queued' THEN 0 ELSE 1 END",
    "smtp_code": "CASE WHEN g.state = 'sent' THEN 250 END",
    "channel": "CASE WHEN g.state = 'queued' THEN '' ELSE "
    "(%(channels)s::text[])[1 + (g.i * 37 + %(index)s * 11) %% %(n_channels)s] END",
    "queued_at": "%(started)s",
    "sending_at": "CASE WHEN g.state <> 'queued' THEN %(started)s END",
    "finished_at": "CASE WHEN g.state <> 'queued' THEN %(done)s END",
}
# Its tracking events: ``per_sent`` on average per sent message (the fractional part
# spread over the messages), opens and every third a click, labels cycling.
_EVENT_SOURCE = """(
  SELECT i, j, %(started)s + (40 + 90 * j + i %% 600) * interval '1 minute' AS at
    FROM generate_series(0, %(count)s - 1) AS i
   CROSS JOIN LATERAL generate_series(
         0, %(whole)s - 1 + CASE WHEN (i * 0.6180339887) %% 1 < %(fraction)s THEN 1 ELSE 0 END) AS j
   WHERE NOT (%(sending)s AND i %% 10 < 3)
     AND (%(states)s::text[])[1 + (i * 7 + %(index)s) %% %(n_states)s] = 'sent') AS g"""
_EVENT_COLUMNS = {
    "message_id": "%(first_id)s + g.i",
    "campaign_id": "%(campaign_id)s",
    "kind": "CASE WHEN g.j %% 3 = 2 THEN 'click' ELSE 'open' END",
    "occurred_at": "g.at",
    "link_index": "CASE WHEN g.j %% 3 = 2 THEN 1 + g.j %% 4 END",
    "label": "(%(labels)s::text[])[1 + (g.i * 13 + g.j * 7) %% %(n_labels)s]",
    "reason": "'bench'",
    "ruleset_version": "'bench'",
    "source_id": "'bench:' || (%(first_id)s + g.i) || ':' || g.j",
    "ingested_at": "g.at",
}


def _messages_and_events(job: dict[str, Any]) -> tuple[int, int]:
    """One campaign's messages and events, ``INSERT … SELECT … generate_series`` (one
    worker: the server does the work)."""
    from django.db import connection, transaction

    from campaigns.models import Message
    from reporting.models import Event

    params = {
        **job,
        "states": list(STATES),
        "n_states": len(STATES),
        "channels": list(CHANNELS),
        "n_channels": len(CHANNELS),
        "labels": list(LABELS),
        "n_labels": len(LABELS),
        "done": job["started"] + dt.timedelta(minutes=30),
        "whole": int(job["events_per_sent"]),
        "fraction": job["events_per_sent"] % 1,
    }
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit = off")
        messages = InsertSelect(Message, _MESSAGE_COLUMNS).execute(_MESSAGE_SOURCE, params)
        events = InsertSelect(Event, _EVENT_COLUMNS).execute(_EVENT_SOURCE, params)
    return messages, events


def _campaigns(now: dt.datetime) -> list[Any]:
    from campaigns.models import Campaign, CampaignStatus, SenderIdentity

    senders = [
        SenderIdentity.objects.create(
            name=f"scale sender {n}", from_name=f"Clinic {n}", from_email=f"news@clinic{n}.example"
        )
        for n in range(5)
    ]
    campaigns = []
    for n in range(CAMPAIGNS):
        # Spread over the last 12 months, oldest first; the newest is still sending.
        started = now - dt.timedelta(days=(CAMPAIGNS - n) * 365 / CAMPAIGNS)
        newest = n == CAMPAIGNS - 1
        campaigns.append(
            Campaign(
                name=f"scale {n:03d}",
                marketing_id=f"MKT-{n % 30:02d}",
                report_field=f"region-{n % 10}",
                sender=senders[n % 5],
                secure_policy="tls_or_better",
                status=CampaignStatus.SENDING if newest else CampaignStatus.SENT,
                frozen_subject=f"{{{{ contact.first_name }}}}, news #{n}",
                started_at=started,
                finished_at=None if newest else started + dt.timedelta(hours=2),
            )
        )
    created = Campaign.objects.bulk_create(campaigns)
    for campaign in created:
        # Created shortly before they started, as in real life (auto_now_add said now).
        campaign.created_at = campaign.started_at - dt.timedelta(hours=1)
    Campaign.objects.bulk_update(created, ["created_at"])
    return created


def _pool(workers: int) -> Any:
    from django.db import connections

    connections.close_all()  # each forked worker opens its own connection
    return multiprocessing.get_context("fork").Pool(workers)


def _triggers(enable: bool) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for table in ("campaigns_message", "reporting_event", "contacts_contact"):
            action = "ENABLE" if enable else "DISABLE"
            cursor.execute(f"ALTER TABLE {table} {action} TRIGGER USER")


LOADED_TABLES = (
    "contacts_contact",
    "contacts_contactprofile",
    "contacts_contacttokenset",
    "campaigns_message",
    "reporting_event",
)


def _secondary_indexes() -> dict[str, str]:
    """Name → the statement that recreates it, for every foreign key, unique constraint
    and index of the loaded tables except their primary keys and what a foreign key
    depends on, read from the catalog (so whatever migrations add is covered)."""
    from django.db import connection

    tables = list(LOADED_TABLES)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.conname, c.conrelid::regclass::text, pg_get_constraintdef(c.oid) "
            "FROM pg_constraint c WHERE c.conrelid = ANY(%s::regclass[]) "
            "AND (c.contype = 'f' OR (c.contype = 'u' AND NOT EXISTS ("
            "  SELECT 1 FROM pg_constraint r WHERE r.contype = 'f' AND r.conindid = c.conindid)))"
            "ORDER BY c.contype DESC",  # unique constraints first, then foreign keys
            [tables],
        )
        found = {
            name: f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}'
            for name, table, definition in cursor.fetchall()
        }
        cursor.execute(
            "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "WHERE i.indrelid = ANY(%s::regclass[]) AND NOT i.indisprimary "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)",
            [tables],
        )
        for name, definition in cursor.fetchall():
            # A partitioned table's index reads "ON ONLY": recreated on the parent, it
            # cascades to every partition.
            found[name] = definition.replace(" ON ONLY ", " ON ")
    return found


def _drop_secondary(statements: dict[str, str]) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for name, statement in reversed(list(statements.items())):
            if statement.startswith("ALTER TABLE"):
                table = statement.split()[2]
                cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
            else:
                cursor.execute(f"DROP INDEX {name}")


def _restore_secondary(statements: dict[str, str], workers: int) -> None:
    """Recreate them: plain indexes two at a time (each in its own connection), then
    the constraints (which lock their table)."""
    indexes = [s for s in statements.values() if not s.startswith("ALTER TABLE")]
    with _pool(workers) as pool:
        pool.map(_run_maintenance, indexes, chunksize=1)
    for statement in statements.values():
        if statement.startswith("ALTER TABLE"):
            _run_maintenance(statement)
    missing = set(statements) - set(_secondary_indexes())
    if missing:
        raise SystemExit(f"not restored: {sorted(missing)}")


def _run_maintenance(statement: str) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '512MB'")
        cursor.execute(statement)


def generate(*, contacts: int, messages: int, events: int, workers: int, seed: int) -> None:
    from django.db import connection
    from django.utils import timezone

    from luxmail import partitions
    from reporting import rollups

    started = time.perf_counter()
    # The months the data spans get their partitions, as beat would have created them
    # month by month over the year (luxmail.partitions_ensure).
    first = partitions.month_start(timezone.now())
    for back in range(MONTHS + 1):
        partitions.partitions_ensure(now=partitions.add_months(first, -back), months_ahead=0)
    # Load without the secondary indexes and foreign keys, build them afterwards (what a
    # bulk load does); the triggers (rollups) are off, the rollups rebuilt once at the end.
    secondary = _secondary_indexes()
    _drop_secondary(secondary)
    _triggers(False)
    try:
        jobs = [
            (first, min(first + CONTACT_CHUNK, contacts + 1), seed)
            for first in range(1, contacts + 1, CONTACT_CHUNK)
        ]
        done = 0
        with _pool(workers) as pool:
            for count in pool.imap_unordered(_contacts_chunk, jobs):
                done += count
                if done % (CONTACT_CHUNK * 20) < CONTACT_CHUNK or done == contacts:
                    rate = done / (time.perf_counter() - started)
                    log(f"  {done:,} contacts with PHI ({rate:,.0f}/s)")
        contacts_seconds = time.perf_counter() - started
        now = timezone.now().replace(microsecond=0)
        campaigns = _campaigns(now)
        plan = _plan(messages, contacts)
        sent_share = STATES.count("sent") / len(STATES)
        per_sent = events / (messages * sent_share * (1 - 0.3 / CAMPAIGNS))
        for item, campaign in zip(plan, campaigns, strict=True):
            item.update(
                campaign_id=campaign.pk,
                started=campaign.started_at,
                contacts=contacts,
                sending=campaign.status == "sending",
                events_per_sent=per_sent,
            )
        copied = [0, 0]
        with _pool(workers) as pool:
            for n, (m, e) in enumerate(pool.imap_unordered(_messages_and_events, plan), 1):
                copied[0] += m
                copied[1] += e
                if n % 20 == 0 or n == CAMPAIGNS:
                    log(
                        f"  {n} campaigns: {copied[0]:,} messages, {copied[1]:,} events "
                        f"({time.perf_counter() - started:,.0f} s)"
                    )
        copy_seconds = time.perf_counter() - started - contacts_seconds
        log(f"building {len(secondary)} indexes and constraints …")
        index_started = time.perf_counter()
        _restore_secondary(secondary, workers)
        index_seconds = time.perf_counter() - index_started
    finally:
        _triggers(True)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence('campaigns_message', 'id'), "
            "(SELECT max(id) FROM campaigns_message))"
        )
    log("building report rows and rollups (reporting.rollups.rebuild) …")
    rebuild_started = time.perf_counter()
    with connection.cursor() as cursor:
        # Statistics first: without them (a partitioned parent is never auto-analyzed)
        # the rebuild's plan expects 200 messages with events and spills to disk.
        cursor.execute(f"ANALYZE {', '.join(LOADED_TABLES)}")
    rollups.rebuild()
    rebuild_seconds = time.perf_counter() - rebuild_started
    vacuum_started = time.perf_counter()
    connection.ensure_connection()
    connection.connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    vacuum_seconds = time.perf_counter() - vacuum_started
    log(
        f"generated in {time.perf_counter() - started:,.0f} s (contacts {contacts_seconds:,.0f} s, "
        f"messages+events INSERT {copy_seconds:,.0f} s, indexes {index_seconds:,.0f} s, "
        f"rollups {rebuild_seconds:,.0f} s, VACUUM ANALYZE {vacuum_seconds:,.0f} s, "
        f"{workers} worker processes)"
    )


# --- measurements ---------------------------------------------------------------------------


def _verdict(ms: float, target: str) -> str:
    return "ok" if ms < TARGETS_MS[target] else "MISSED"


def measure(runs: int) -> None:
    from django.db import connection, transaction
    from django.utils import timezone

    from campaigns.models import Campaign, Message
    from campaigns.sending import queue
    from contacts import segments
    from luxmail import conf
    from reporting import reports, selectors

    def ms(func: Callable[[], object]) -> float:
        return median_seconds(func, runs=runs) * 1000

    log("")
    log(f"machine load before: {system_load()}")
    layout = segments.token_layout()
    log(
        f"contact token layout {layout}"
        + (
            ""
            if segments.token_layout_current()
            else " (old: segments use year/month/day tokens until manage.py contacts_reindex)"
        )
    )
    count = segments.count(RULES)
    took = ms(lambda: segments.count(RULES))
    log(
        f"segment count (condition E11, age >= 50, zip3 in 021/022/024): {count:,} contacts "
        f"in {took:.1f} ms (target < {TARGETS_MS['segment']} ms) {_verdict(took, 'segment')}"
    )
    log(f"  {_segment_plan()}")

    today = timezone.localdate()
    scopes = {
        "everything": reports.Filters(),
        "last 30 days": reports.Filters(start=today - dt.timedelta(days=30), end=today),
    }
    log(f"split reports, first {PAGE_ROWS} rows sorted by sent (ms, target < 100 each):")
    header = f"  {'split':14s}" + "".join(
        f"{scope + ' / ' + events:>28s}" for scope in scopes for events in ("human", "all")
    )
    log(header)
    worst = 0.0
    for split in SPLITS:
        cells = []
        for filters in scopes.values():
            for events in ("human", "all"):
                counting = reports.Counting().override(events)
                took = ms(
                    lambda f=filters, s=split, c=counting: reports.split_page(
                        filters=f, by=s, counting=c, limit=PAGE_ROWS
                    )
                )
                worst = max(worst, took)
                cells.append(f"{took:28.1f}")
        log(f"  {split:14s}" + "".join(cells))
    log(f"  slowest split: {worst:.1f} ms {_verdict(worst, 'split')}")

    rng = random.Random(7)
    total = Message.objects.order_by("-contact_id").values_list("contact_id", flat=True).first()
    picks = [rng.randrange(1, (total or 1) + 1) for _ in range(runs + 2)]
    lengths = []

    def history() -> None:
        rows = selectors.contact_history(contact_id=picks.pop() if picks else 1)
        lengths.append(sum(1 + len(r["events"]) for r in rows))

    took = ms(history)
    log(
        f"contact history (messages + events, ~{sum(lengths) // max(len(lengths), 1)} rows): "
        f"{took:.1f} ms (target < {TARGETS_MS['history']} ms) {_verdict(took, 'history')}"
    )

    sending = Campaign.objects.get(status="sending")
    batch = conf.send_batch()
    claimed: list[int] = []

    def claim() -> None:
        with transaction.atomic():
            _, rows = queue.claim(campaign_id=sending.pk, limit=batch, lease_seconds=60)
            claimed.append(len(rows))
            transaction.set_rollback(True)  # every run claims the same first batch

    took = ms(claim)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM campaigns_message")
        rows = cursor.fetchone()[0]
    log(
        f"send queue claim() of a {claimed[-1]}-message batch among {rows:,} messages "
        f"(select, lease UPDATE, eligibility checks): {took:.2f} ms"
    )

    # The claim's row selection (the part that grows with the table), as claim() binds it.
    params = {
        "campaign": sending.pk,
        "limit": batch,
        "since": queue.claim_since(sending.pk),
        "now": timezone.now(),
    }

    def candidates() -> None:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(queue.CLAIM_PLAN_SQL)
            cursor.execute(queue.CANDIDATES_SQL, params)
            cursor.fetchall()

    took = ms(candidates)
    server = []
    plan: list[str] = []
    for _ in range(runs):
        # What the server spends (plan + execute), apart from a busy machine's scheduling.
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(queue.CLAIM_PLAN_SQL)
            explain = "EXPLAIN (ANALYZE, SUMMARY) " + queue.CANDIDATES_SQL
            cursor.execute(explain, params)
            lines = [row[0] for row in cursor.fetchall()]
            plan = lines
        server.append(
            sum(float(line.split(":")[1].split()[0]) for line in lines if line.endswith(" ms"))
        )
    server_ms = statistics.median(server)
    log(
        f"  its row selection (FOR UPDATE SKIP LOCKED): {took:.2f} ms wall, "
        f"{server_ms:.2f} ms in the server (plan + execute) "
        f"(target < {TARGETS_MS['claim']} ms) {_verdict(server_ms, 'claim')}"
    )
    scanned = sum(1 for line in plan if "Index Scan" in line or "Seq Scan" in line)
    log(f"  partitions it reads (the others pruned by queued_at >= created_at - 1 day): {scanned}")
    log(f"machine load after: {system_load()}")


def _segment_plan() -> str:
    """Where the segment count's time goes: the GIN index scan and the heap pages it
    then reads.

    PostgreSQL 15.20's bitmap heap scan reads the page of every matching row even for a
    ``count(*)`` on an all-visible table (its skip-fetch shortcut is gone; the GIN index
    has no index-only scan), so the count's speed depends on those pages being in
    ``shared_buffers``: the line shows the heap scan's buffer hits and reads, how much of
    the table the visibility map marks all-visible, and the token table + GIN index size
    beside ``shared_buffers`` (docs/operations.md, Scaling)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from contacts import segments
    from contacts.models import ContactTokenSet

    with CaptureQueriesContext(connection) as captured:
        segments.count(RULES)
    sql = captured.captured_queries[-1]["sql"]
    table = ContactTokenSet._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
        plan = [row[0] for row in cursor.fetchall()]
        cursor.execute(
            "SELECT current_setting('shared_buffers'), "
            "pg_size_bytes(current_setting('shared_buffers')), relpages, relallvisible, "
            "pg_table_size(oid), pg_indexes_size(oid) FROM pg_class WHERE oid = %s::regclass",
            [table],
        )
        shared_buffers, buffer_bytes, pages, all_visible, table_bytes, index_bytes = (
            cursor.fetchone()
        )
    summary = plan_summary(plan)
    mb = 1024 * 1024
    hot = table_bytes + index_bytes
    return (
        f"its plan (EXPLAIN (ANALYZE, BUFFERS), once): GIN index scan {summary['index_ms']} ms, "
        f"execution {summary['execution_ms']} ms, heap pages {summary['heap_pages']} "
        f"(shared hit {summary['heap_hit']}, read {summary['heap_read']}); "
        f"all-visible {all_visible:,} of {pages:,} pages; token table + indexes "
        f"{hot / mb:,.0f} MB, shared_buffers {shared_buffers}"
        + ("" if hot <= buffer_bytes else " (too small to keep them cached)")
    )


def plan_summary(plan: list[str]) -> dict[str, str]:
    """The figures ``_segment_plan`` prints, read from ``EXPLAIN (ANALYZE, BUFFERS)`` text.

    ``heap_hit``/``heap_read`` are the bitmap heap scan's own buffers (its node's total
    minus the index scan under it): pages found in ``shared_buffers`` and pages read from
    the OS. "Heap Blocks" counts every page the bitmap names, read or not.
    """
    import re

    def first(pattern: str, lines: list[str]) -> str:
        for line in lines:
            found = re.search(pattern, line)
            if found:
                return found.group(1)
        return "?"

    summary = {"index_ms": "?", "heap_hit": "?", "heap_read": "?"}
    heap_at = next((i for i, line in enumerate(plan) if "Bitmap Heap Scan" in line), None)
    index_at = next((i for i, line in enumerate(plan) if "Bitmap Index Scan" in line), None)
    if index_at is not None:
        summary["index_ms"] = first(r"actual time=[\d.]+\.\.([\d.]+)", plan[index_at:])
    if heap_at is not None and index_at is not None:

        def buffers(lines: list[str]) -> dict[str, int]:
            # The node's own "Buffers:" line: the first one before the next node or the
            # planning section.
            for line in lines:
                if "->" in line or line.startswith("Planning"):
                    break
                if "Buffers: shared" in line:
                    return {k: int(v) for k, v in re.findall(r"(hit|read)=(\d+)", line)}
            return {}

        heap, index = buffers(plan[heap_at + 1 :]), buffers(plan[index_at + 1 :])
        for kind in ("hit", "read"):
            summary[f"heap_{kind}"] = str(heap.get(kind, 0) - index.get(kind, 0))
    summary["heap_pages"] = first(r"Heap Blocks: exact=(\d+)", plan)
    summary["execution_ms"] = first(r"Execution Time: ([\d.]+)", plan)
    return summary


def disk_report() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
        log(f"disk: database {cursor.fetchone()[0]}")
        for table in ("contacts_contact", "contacts_contactprofile", "contacts_contacttokenset"):
            cursor.execute("SELECT pg_size_pretty(pg_total_relation_size(%s))", [table])
            log(f"  {table}: {cursor.fetchone()[0]}")
        for table in ("campaigns_message", "reporting_event", "reporting_messagestat"):
            cursor.execute(
                "SELECT pg_size_pretty(COALESCE(sum(pg_total_relation_size(relid))::bigint, "
                "pg_total_relation_size(%s::regclass))), GREATEST(count(*) - 1, 0) "
                "FROM pg_partition_tree(%s::regclass)",
                [table, table],
            )
            size, parts = cursor.fetchone()
            log(f"  {table}: {size}" + (f" ({parts} partitions)" if parts else ""))


def _drop(database: str) -> None:
    import psycopg

    with psycopg.connect(PG_URL.format(name="postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 = 1 M / 10 M / 30 M")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--workers", type=int, default=2, help="generator processes")
    parser.add_argument("--database", default=DATABASE)
    parser.add_argument("--seed", type=int, default=20261206)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--measure-only",
        action="store_true",
        help="measure an existing database generated with --keep (nothing generated or dropped)",
    )
    args = parser.parse_args()
    if not args.database.startswith("luxmail_scale"):
        raise SystemExit("use a database named luxmail_scale…: it is dropped and recreated")
    contacts = max(int(FULL_CONTACTS * args.scale), 1_000)
    messages = max(int(FULL_MESSAGES * args.scale), CAMPAIGNS * 10)
    events = int(FULL_EVENTS * args.scale)

    log(f"load before: {system_load()}")
    if args.measure_only:
        if not _exists(args.database):
            raise SystemExit(f"{args.database} does not exist: generate it first with --keep")
        # Pending migrations are applied first, as a deploy does (migration 0009 records
        # the token layout an existing database has); no data is generated or dropped.
        setup_django(args.database)
        try:
            _describe()
            disk_report()
            measure(args.runs)
        finally:
            from django.db import connections

            connections.close_all()
        return
    _drop(args.database)
    setup_django(args.database)
    log(
        f"generating {contacts:,} contacts, {messages:,} messages, ~{events:,} events over "
        f"{MONTHS} months in {args.database} …"
    )
    try:
        generate(
            contacts=contacts,
            messages=messages,
            events=events,
            workers=args.workers,
            seed=args.seed,
        )
        disk_report()
        measure(args.runs)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            _drop(args.database)
            log(f"dropped {args.database} (--keep keeps it)")
        else:
            log(f"kept {args.database}: re-measure with --measure-only")


def _exists(database: str) -> bool:
    import psycopg

    with psycopg.connect(PG_URL.format(name="postgres"), autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database])
        return found.fetchone() is not None


def _describe() -> None:
    """What the kept database holds (--measure-only)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT count(*) FROM contacts_contact), "
            "(SELECT count(*) FROM campaigns_message), (SELECT count(*) FROM reporting_event), "
            "(SELECT min(queued_at) FROM campaigns_message)"
        )
        contacts, messages, events, since = cursor.fetchone()
    log(
        f"measuring {connection.settings_dict['NAME']}: {contacts:,} contacts, {messages:,} "
        f"messages, {events:,} events since {since:%Y-%m-%d}"
    )


if __name__ == "__main__":
    main()
