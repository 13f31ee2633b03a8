"""Scale benchmark (issue 16 §3): 1 M contacts with PHI, 10 M messages and 30 M events
across 12 months on PostgreSQL, then the queries that must stay fast at that size.

    .venv/bin/python bench/scale.py --scale 0.01     # 10 k contacts, 100 k messages: a minute
    .venv/bin/python bench/scale.py --scale 0.1      # 100 k / 1 M / 3 M
    .venv/bin/python bench/scale.py                  # full size: ~10+ GB of disk
    .venv/bin/python bench/scale.py --keep           # keep the database afterwards

In a dedicated database (``luxmail_scale``, created afresh and migrated, dropped at the
end unless ``--keep``):

1. contacts are built as model instances, their PHI sealed with ``luxmail.crypto.seal``
   (AES-GCM per field, bound to the row's UUID), the e-mail blind index and the segment
   tokens computed as the services do (``crypto.blind_index``,
   ``contacts.attributes.profile_tokens``), in ``--workers`` processes, each COPYing its
   chunks; every column list and value comes from the models' ``_meta`` (``pre_save`` and
   ``get_db_prep_save``, what an INSERT does), so a schema change adapts;
2. 120 campaigns (10 a month over 12 months) with their messages and tracking events are
   COPYed into the partitioned tables (columns from ``_meta``; columns the generator does
   not know get the field's default), the newest campaign still sending with 30 % of its
   messages queued; triggers are off during the load and ``reporting.rollups.rebuild``
   (what ``manage.py rebuild_rollups`` runs) then builds the report rows and rollups;
3. it prints the median of ``--runs`` runs of: the segment count with 3 PHI conditions,
   every split report asked for (campaign, subject, from address, recipient domain,
   report field; human only and all events) over everything and the last 30 days, a
   contact's full history (``reporting.selectors.contact_history``), the send queue's
   claim (``campaigns.sending.queue.claim``, rolled back so each run claims the same
   batch); then the generation time and the disk used, and the machine load.

Targets (issue 16): segment < 100 ms, each split < 100 ms, history < 50 ms, claim < 5 ms.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
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


def copy_instances(model: Any, objects: Iterable[Any]) -> int:
    """COPY unsaved ``objects`` of ``model``: every concrete column, each value as an
    INSERT would write it (``pre_save`` then ``get_db_prep_save``)."""
    from django.db import connection

    fields = model._meta.concrete_fields
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    count = 0
    sql = f"COPY {model._meta.db_table} ({columns}) FROM STDIN"
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for obj in objects:
            # psycopg adapts what Django prepares (Binary, Jsonb, lists) as in an INSERT.
            copy.write_row([f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields])
            count += 1
    return count


class RowFormat:
    """COPY lines for ``model`` from a dict of the columns a generator knows; every other
    column gets its field's default, computed once (so a new column with a default
    needs no change here)."""

    def __init__(self, model: Any, known: set[str]) -> None:
        from django.db import connection

        self.model = model
        fields = model._meta.concrete_fields
        self.columns = [f.column for f in fields]
        parts = []
        for f in fields:
            if f.column in known:
                parts.append("{" + f.column + "}")
                continue
            value = _escape(f.get_db_prep_save(f.get_default(), connection))
            parts.append(value.replace("{", "{{").replace("}", "}}"))
        self.template = "\t".join(parts) + "\n"

    def copy(self, lines: Iterator[dict[str, Any]]) -> int:
        from django.db import connection

        columns = ", ".join(connection.ops.quote_name(c) for c in self.columns)
        count = 0
        with connection.cursor() as cursor:
            sql = f"COPY {self.model._meta.db_table} ({columns}) FROM STDIN"
            with cursor.cursor.copy(sql) as copy:
                buffer = []
                for values in lines:
                    buffer.append(self.template.format_map(values))
                    if len(buffer) >= 10_000:
                        copy.write("".join(buffer))
                        count += len(buffer)
                        buffer = []
                copy.write("".join(buffer))
                count += len(buffer)
        return count


# --- generation ----------------------------------------------------------------------------


def _contacts_chunk(job: tuple[int, int, int]) -> int:
    """Contacts ``[first, last)`` with PHI profiles and segment tokens (one worker)."""
    from django.db import transaction

    from contacts import attributes
    from contacts.models import Contact, ContactProfile, ContactTokenSet
    from luxmail import crypto

    first, last, seed = job
    rng = random.Random(seed + first)
    today = dt.date.today()
    zip5s = {z3: [f"{z3}{n:02d}" for n in range(0, 100, 3)] for z3 in ZIP3_WEIGHTS}
    now = dt.datetime.now(dt.UTC)
    contacts, profiles, tokensets = [], [], []
    for pk in range(first, last):
        email = f"patient{pk}@{DOMAINS[pk % len(DOMAINS)]}"
        contact = Contact(id=pk, uuid=uuid.UUID(int=rng.getrandbits(128), version=4))
        contact.domain = email.rpartition("@")[2]
        contact.email_bidx = crypto.blind_index("email", email)
        crypto.seal(contact, "email", email)
        crypto.seal(contact, "first_name", f"First{pk % 997}")
        crypto.seal(contact, "last_name", f"Last{pk % 1009}")
        contact.status_changed_at = now
        contacts.append(contact)
        values = synthetic_profile(rng, today, zip5s)
        profile = ContactProfile(contact_id=pk, uuid=contact.uuid)
        for name, value in values.items():
            crypto.seal(profile, name, value)
        profiles.append(profile)
        tokens = sorted(attributes.profile_tokens(values, {}, {}))
        tokensets.append(ContactTokenSet(contact_id=pk, tokens=tokens))
    with transaction.atomic():
        copy_instances(Contact, contacts)
        copy_instances(ContactProfile, profiles)
        copy_instances(ContactTokenSet, tokensets)
    return last - first


DOMAINS = [f"mail{n}.example" for n in range(40)] + ["example.org", "example.com"] * 20


def _plan(messages: int, contacts: int) -> list[dict[str, Any]]:
    """Per campaign: id, start, message id range, contact stride (deterministic)."""
    per = messages // CAMPAIGNS
    return [
        {"index": n, "first_id": n * per + 1, "count": per, "offset": (n * 7919) % contacts}
        for n in range(CAMPAIGNS)
    ]


def _messages_and_events(job: dict[str, Any]) -> tuple[int, int]:
    """COPY one campaign's messages and their events (one worker)."""
    from django.db import transaction

    from campaigns.models import Message
    from reporting.models import Event

    campaign_id, started = job["campaign_id"], job["started"]
    contacts, sending = job["contacts"], job["sending"]
    per_sent = job["events_per_sent"]
    message_format = RowFormat(
        Message,
        {
            "id",
            "campaign_id",
            "contact_id",
            "state",
            "attempts",
            "smtp_code",
            "channel",
            "queued_at",
            "sending_at",
            "finished_at",
        },
    )
    event_format = RowFormat(
        Event,
        {
            "id",
            "message_id",
            "campaign_id",
            "kind",
            "occurred_at",
            "link_index",
            "label",
            "reason",
            "ruleset_version",
            "source_id",
            "ingested_at",
        },
    )
    queued = started.isoformat()
    done = (started + dt.timedelta(minutes=30)).isoformat()

    def state_of(i: int) -> str:
        if sending and i % 10 < 3:
            return "queued"
        return STATES[(i * 7 + job["index"]) % len(STATES)]

    def message_rows() -> Iterator[dict[str, Any]]:
        for i in range(job["count"]):
            state = state_of(i)
            final = state != "queued"
            yield {
                "id": job["first_id"] + i,
                "campaign_id": campaign_id,
                "contact_id": 1 + (job["offset"] + i) % contacts,
                "state": state,
                "attempts": 1 if final else 0,
                "smtp_code": 250 if state == "sent" else r"\N",
                "channel": CHANNELS[(i * 37 + job["index"] * 11) % len(CHANNELS)] if final else "",
                "queued_at": queued,
                "sending_at": queued if final else r"\N",
                "finished_at": done if final else r"\N",
            }

    def event_rows() -> Iterator[dict[str, Any]]:
        event_id = job["first_id"] * 4
        for i in range(job["count"]):
            if state_of(i) != "sent":
                continue
            # per_sent events on average: a fractional part spread over the messages
            count = int(per_sent) + (1 if (i * 0.6180339887) % 1 < per_sent % 1 else 0)
            for j in range(count):
                event_id += 1
                at = (started + dt.timedelta(minutes=40 + 90 * j + i % 600)).isoformat()
                click = j % 3 == 2
                yield {
                    "id": event_id,
                    "message_id": job["first_id"] + i,
                    "campaign_id": campaign_id,
                    "kind": "click" if click else "open",
                    "occurred_at": at,
                    "link_index": 1 + j % 4 if click else r"\N",
                    "label": LABELS[(i * 13 + j * 7) % len(LABELS)],
                    "reason": "bench",
                    "ruleset_version": "bench",
                    "source_id": f"bench:{event_id}",
                    "ingested_at": at,
                }

    with transaction.atomic():
        sent = message_format.copy(message_rows())
        events = event_format.copy(event_rows())
    return sent, events


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
    return Campaign.objects.bulk_create(campaigns)


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
    finally:
        _triggers(True)
    with connection.cursor() as cursor:
        for table in ("campaigns_message", "reporting_event"):
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                f"(SELECT max(id) FROM {table}))"
            )
    log("building report rows and rollups (reporting.rollups.rebuild) …")
    rebuild_started = time.perf_counter()
    rollups.rebuild()
    rebuild_seconds = time.perf_counter() - rebuild_started
    connection.ensure_connection()
    connection.connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    log(
        f"generated in {time.perf_counter() - started:,.0f} s (contacts {contacts_seconds:,.0f} s, "
        f"messages+events COPY {copy_seconds:,.0f} s, rollups {rebuild_seconds:,.0f} s, "
        f"{workers} worker processes)"
    )


# --- measurements ---------------------------------------------------------------------------


def _verdict(ms: float, target: str) -> str:
    return "ok" if ms < TARGETS_MS[target] else "MISSED"


# The inner SELECT of campaigns.sending.queue's claim statement.
_CANDIDATES = """
SELECT id FROM campaigns_message
 WHERE campaign_id = %(campaign)s
   AND (state = 'queued' OR (state = 'deferred' AND next_attempt_at <= statement_timestamp()))
   AND (lease_until IS NULL OR lease_until < statement_timestamp())
 ORDER BY id LIMIT %(limit)s FOR UPDATE SKIP LOCKED
"""


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
    count = segments.count(RULES)
    took = ms(lambda: segments.count(RULES))
    log(
        f"segment count (condition E11, age >= 50, zip3 in 021/022/024): {count:,} contacts "
        f"in {took:.1f} ms (target < {TARGETS_MS['segment']} ms) {_verdict(took, 'segment')}"
    )

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

    def candidates() -> None:
        # The claim query's row selection (the part that grows with the table).
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_CANDIDATES, {"campaign": sending.pk, "limit": batch})
            cursor.fetchall()

    took = ms(candidates)
    server = []
    for _ in range(runs):
        # What the server spends (plan + execute), apart from a busy machine's scheduling.
        with transaction.atomic(), connection.cursor() as cursor:
            explain = "EXPLAIN (ANALYZE, SUMMARY) " + _CANDIDATES
            cursor.execute(explain, {"campaign": sending.pk, "limit": batch})
            lines = [row[0] for row in cursor.fetchall()]
        server.append(
            sum(float(line.split(":")[1].split()[0]) for line in lines if line.endswith(" ms"))
        )
    server_ms = statistics.median(server)
    log(
        f"  its row selection (FOR UPDATE SKIP LOCKED): {took:.2f} ms wall, "
        f"{server_ms:.2f} ms in the server (plan + execute) "
        f"(target < {TARGETS_MS['claim']} ms) {_verdict(server_ms, 'claim')}"
    )
    log(f"machine load after: {system_load()}")


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
    args = parser.parse_args()
    if not args.database.startswith("luxmail_scale"):
        raise SystemExit("use a database named luxmail_scale…: it is dropped and recreated")
    contacts = max(int(FULL_CONTACTS * args.scale), 1_000)
    messages = max(int(FULL_MESSAGES * args.scale), CAMPAIGNS * 10)
    events = int(FULL_EVENTS * args.scale)

    log(f"load before: {system_load()}")
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


if __name__ == "__main__":
    main()
