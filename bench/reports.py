"""Split-report benchmark: 10,000,000 messages across 200 campaigns.

    .venv/bin/python bench/reports.py               # load once (reused), then time
    .venv/bin/python bench/reports.py --reload      # drop the data and load again
    .venv/bin/python bench/reports.py --messages 1000000

In the dedicated database ``luxmail_bench_reports``:

1. creates 200 campaigns over the last 200 days (40 marketing ids, 10 report-field
   values, 5 sender identities, a subject each) and COPYs 10 M messages into
   ``campaigns_message`` (states, channels: TLS, S/MIME, PGP, portal; the insert
   trigger is off during the load);
2. fills the per-message report rows (``reporting_messagestat``) with a recipient
   domain drawn from 20,000 domains (skewed: a few large mailbox providers and a long
   tail) and engagement labels (human, unknown, privacy proxy, automated by kind), then
   builds every rollup directly from them with the
   same SQL ``manage.py rebuild_rollups`` uses;
3. times each split report through ``reporting.reports`` as the page asks for it (the
   first 200 rows, sorted in SQL) — over everything, over the last 90 days, and for one
   campaign — and every row (what a download computes) over everything; prints the
   median of ``--runs`` runs (after a warm-up) and the machine load.

Target (DESIGN.md §6): every split report < 200 ms.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import median_seconds, setup_django, system_load

DATABASE = "luxmail_bench_reports"
CAMPAIGNS = 200
DOMAINS = 20_000
PAGE_ROWS = 200  # what the report page shows (reporting.views.ROWS_SHOWN)
# Per recipient: most over enforced TLS; S/MIME and PGP for the few with a certificate
# or key; the portal for PHI the destination cannot take securely.
CHANNELS = ("tls",) * 90 + ("smime",) * 2 + ("pgp",) * 1 + ("portal",) * 7
STATES = ("sent",) * 90 + ("bounced",) * 4 + ("failed",) * 3 + ("skipped",) * 2 + ("unknown",)


def log(message: str) -> None:
    print(message, flush=True)


def load(messages: int, skew: float) -> None:
    from django.db import connection
    from django.utils import timezone

    from campaigns.models import Campaign, CampaignStatus, SenderIdentity

    log(f"loading {messages:,} messages across {CAMPAIGNS} campaigns …")
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE campaigns_message, reporting_messagestat, reporting_campaignrollup, "
            "reporting_domainrollup, reporting_domainmonthrollup, reporting_domainweekrollup, "
            "reporting_domaindayrollup, reporting_domaintotalrollup, reporting_eventrollup, "
            "reporting_event CASCADE"
        )
    Campaign.objects.filter(name__startswith="bench ").delete()
    senders = []
    for n in range(5):
        sender, _ = SenderIdentity.objects.get_or_create(
            name=f"bench sender {n}",
            defaults={"from_name": f"Clinic {n}", "from_email": f"news{n}@clinic{n}.example"},
        )
        senders.append(sender)
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    campaigns = Campaign.objects.bulk_create(
        [
            Campaign(
                name=f"bench {n:03d}",
                marketing_id=f"MKT-{n % 40:02d}",
                report_field=f"region-{n % 10}",
                sender=senders[n % 5],
                secure_policy="tls_or_better",
                status=CampaignStatus.SENT,
                frozen_subject=f"{{{{ contact.first_name }}}}, news #{n}",
                started_at=now - dt.timedelta(days=CAMPAIGNS - n),
                finished_at=now - dt.timedelta(days=CAMPAIGNS - n) + dt.timedelta(hours=2),
            )
            for n in range(CAMPAIGNS)
        ]
    )
    per_campaign = messages // CAMPAIGNS
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE campaigns_message DISABLE TRIGGER reporting_message_ins")
    try:
        _copy_messages(campaigns, per_campaign, started)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE campaigns_message ENABLE TRIGGER reporting_message_ins")
    _report_rows(started, skew)


def _copy_messages(campaigns: list, per_campaign: int, started: float) -> None:
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        raw = cursor.cursor  # psycopg 3 cursor: COPY
        columns = (
            "campaign_id, state, attempts, smtp_reply, channel, channel_reason, queued_at, "
            "sending_at, finished_at"
        )
        with raw.copy(f"COPY campaigns_message ({columns}) FROM STDIN") as copy:
            for number, campaign in enumerate(campaigns):
                assert campaign.started_at is not None
                queued = campaign.started_at.isoformat()
                done = (campaign.started_at + dt.timedelta(minutes=30)).isoformat()
                buffer = io.StringIO()
                for i in range(per_campaign):
                    state = STATES[(i * 7 + number) % len(STATES)]
                    channel = CHANNELS[(i * 37 + number * 11) % len(CHANNELS)]
                    buffer.write(
                        f"{campaign.pk}\t{state}\t1\t\t{channel}\t\t{queued}\t{queued}\t{done}\n"
                    )
                copy.write(buffer.getvalue())
                if number % 20 == 19:
                    log(f"  {number + 1} campaigns copied ({time.perf_counter() - started:.0f} s)")


def _report_rows(started: float, skew: float) -> None:
    from django.db import connection, transaction

    from reporting import rollups

    log(f"messages copied in {time.perf_counter() - started:.0f} s; building report rows …")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL luxmail.rollup_rebuild = 'on'")
        cursor.execute("SET LOCAL work_mem = '256MB'")
        # A skewed domain per message (hash of its id): a few big providers, a long tail.
        cursor.execute(
            """
            INSERT INTO reporting_messagestat (message_id, campaign_id, hour, domain, channel,
                state, open_label, click_label, opens_human, opens_unknown, opens_automated,
                clicks_human, clicks_unknown, clicks_automated, unsubscribed, complained,
                opens_privacy_proxy, opens_auto_crawler, opens_auto_prefetch,
                clicks_auto_scanner)
            SELECT m.id, m.campaign_id, date_trunc('hour', m.queued_at, 'UTC'),
                   'd' || floor(%s * power(h.u, %s))::int || '.example',
                   m.channel,
                   CASE WHEN m.state IN ('queued', 'sending', 'deferred') THEN 'queued'
                        ELSE m.state END,
                   CASE WHEN m.state <> 'sent' THEN 0 WHEN h.e < 0.35 THEN 4
                        WHEN h.e < 0.38 THEN 3 WHEN h.e < 0.50 THEN 2
                        WHEN h.e < 0.60 THEN 1 ELSE 0 END,
                   CASE WHEN m.state <> 'sent' THEN 0 WHEN h.e < 0.08 THEN 4
                        WHEN h.e < 0.10 THEN 1 ELSE 0 END,
                   CASE WHEN m.state = 'sent' AND h.e < 0.35 THEN 1 + (h.e * 10)::int ELSE 0 END,
                   CASE WHEN m.state = 'sent' AND h.e BETWEEN 0.35 AND 0.38 THEN 1 ELSE 0 END,
                   CASE WHEN m.state = 'sent' AND h.e < 0.60 THEN 1 ELSE 0 END,
                   CASE WHEN m.state = 'sent' AND h.e < 0.08 THEN 1 ELSE 0 END,
                   0,
                   CASE WHEN m.state = 'sent' AND h.e < 0.10 THEN 3 ELSE 0 END,
                   m.state = 'sent' AND h.e > 0.995,
                   m.state = 'sent' AND h.e > 0.999,
                   CASE WHEN m.state = 'sent' AND h.e BETWEEN 0.38 AND 0.50 THEN 1 ELSE 0 END,
                   CASE WHEN m.state = 'sent' AND h.e < 0.60 AND m.id %% 2 = 0 THEN 1 ELSE 0 END,
                   CASE WHEN m.state = 'sent' AND h.e < 0.60 AND m.id %% 2 = 1 THEN 1 ELSE 0 END,
                   CASE WHEN m.state = 'sent' AND h.e < 0.10 THEN 3 ELSE 0 END
              FROM campaigns_message m,
                   LATERAL (SELECT ((hashint8(m.id) & 2147483647)::float8 / 2147483647) AS u,
                                   ((hashint8(m.id + 7919) & 2147483647)::float8 / 2147483647)
                                   AS e) h
            """,
            [DOMAINS, skew],
        )
        log(f"  {cursor.rowcount:,} report rows ({time.perf_counter() - started:.0f} s)")
        for rollup in rollups.ROLLUPS:
            cursor.execute(rollups._rollup_from_stats_sql(rollup))
            log(f"  {rollup.table}: {cursor.rowcount:,} rows")
        cursor.execute("SET LOCAL luxmail.rollup_rebuild = 'off'")
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    log(f"loaded in {time.perf_counter() - started:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--reload", action="store_true")
    parser.add_argument("--database", default=DATABASE, help="The bench database to use.")
    parser.add_argument(
        "--events", choices=("human", "all"), default="human", help="The report switch."
    )
    parser.add_argument(
        "--domain-skew",
        type=float,
        default=4.0,
        help="recipient domain = 20,000 x u^skew: 4 (default) is a fat tail - each "
        "campaign of 50,000 reaches ~14,000 domains, the top 10 take 15%% of the mail; "
        "16 is closer to consumer lists (top 10 domains ~60%%). Changing it needs --reload.",
    )
    args = parser.parse_args()

    setup_django(args.database)
    from django.db import connection
    from django.utils import timezone

    from campaigns.models import Campaign
    from reporting import reports

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM reporting_messagestat")
        present = cursor.fetchone()[0]
    if args.reload or present != args.messages - args.messages % CAMPAIGNS:
        load(args.messages, args.domain_skew)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM campaigns_message")
        total = cursor.fetchone()[0]
        sizes = {}
        for table in (
            "reporting_campaignrollup",
            "reporting_domainrollup",
            "reporting_domainmonthrollup",
            "reporting_domainweekrollup",
            "reporting_domaindayrollup",
            "reporting_domaintotalrollup",
        ):
            cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 - fixed names
            sizes[table] = cursor.fetchone()[0]
    counting = reports.Counting().override(args.events)
    today = timezone.localdate()
    one = Campaign.objects.filter(name__startswith="bench ").order_by("-started_at").first()
    assert one is not None
    # The worst date range for the domain split: both ends mid-month (half a month of
    # days to add or subtract at each end).
    mid_start = (today.replace(day=1) - dt.timedelta(days=70)).replace(day=16)
    mid_end = (today.replace(day=1) - dt.timedelta(days=1)).replace(day=15)
    scopes = {
        "everything": reports.Filters(),
        "last 90 days": reports.Filters(start=today - dt.timedelta(days=90), end=today),
        "mid-month": reports.Filters(start=mid_start, end=mid_end),
        "one campaign": reports.Filters(campaign_ids=(one.pk,)),
    }
    log("")
    log(f"machine load: {system_load()}")
    log(f"{total:,} messages; rollup rows: " + ", ".join(f"{k} {v:,}" for k, v in sizes.items()))
    log(f"mid-month = {mid_start} to {mid_end}; domain skew {args.domain_skew}")
    log(f"events: {counting.describe()}")
    log(f"median of {args.runs} runs (ms); the page: first {PAGE_ROWS} rows sorted by sent")
    header = f"{'split':16s}" + "".join(f"{name:>15s}" for name in scopes) + f"{'all rows':>12s}"
    log(header)
    worst = 0.0
    for split in reports.SPLITS:
        cells = []
        for filters in scopes.values():
            seconds = median_seconds(
                lambda f=filters, s=split: reports.split_page(
                    filters=f, by=s, counting=counting, limit=PAGE_ROWS
                ),
                runs=args.runs,
            )
            worst = max(worst, seconds)
            cells.append(f"{seconds * 1000:15.1f}")
        everything = median_seconds(
            lambda s=split: reports.split(filters=scopes["everything"], by=s, counting=counting),
            runs=max(3, args.runs // 2),
        )
        log(f"{split:16s}" + "".join(cells) + f"{everything * 1000:12.1f}")
    for name, filters in scopes.items():
        seconds = median_seconds(
            lambda f=filters: reports.totals(filters=f, counting=counting), runs=args.runs
        )
        log(f"{'totals':16s} {name}: {seconds * 1000:.1f} ms")
    log(f"slowest split: {worst * 1000:.1f} ms (target < 200 ms)")


if __name__ == "__main__":
    main()
