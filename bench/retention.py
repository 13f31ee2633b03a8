"""Retention purge at volume (luxmail/retention.py): keyset batches on PostgreSQL.

    .venv/bin/python bench/retention.py                     # 200,000 expired messages
    .venv/bin/python bench/retention.py --messages 1000000 --batch 5000

In the dedicated database ``luxmail_bench_retention``: inserts ``--messages`` delivery
records (each with a delivery proof and one open event) queued 800 days ago into two
campaigns, puts the second campaign (``--held`` share of the rows) on legal hold, then
times a dry run and a real run (all batches in one run) and prints rows/s, the batch
count, what was held and whether the report rows survived, with the machine's load.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import setup_django, system_load

_FILL = """
INSERT INTO campaigns_message (campaign_id, state, attempts, smtp_reply, channel,
       channel_reason, queued_at, finished_at)
SELECT CASE WHEN g %% 100 < %(held)s THEN %(held_campaign)s ELSE %(campaign)s END,
       'sent', 1, '250 OK', 'tls', 'bench', now() - interval '800 days',
       now() - interval '800 days'
  FROM generate_series(1, %(n)s) g;
INSERT INTO campaigns_deliveryproof (message_id, host, port, route, tls_version, tls_cipher,
       peer_cert_sha256, cert_verified, mta_sts, dane, replied_at)
SELECT id, 'relay.bench', 587, 'relay', 'TLSv1.3', 'TLS_AES_256_GCM_SHA384', '', true, '', '',
       queued_at FROM campaigns_message;
INSERT INTO reporting_event (message_id, campaign_id, kind, occurred_at, label, reason,
       detail, ruleset_version, device_unknown, relabeled_from, method, ip_prefix, ip_hash,
       user_agent, network, source, source_id, ingested_at)
SELECT id, campaign_id, 'open', queued_at, 'human', 'bench', '', 'b', false, '', 'GET', '',
       '', '', '', 'tracking', 'bench-' || id, queued_at FROM campaigns_message;
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--held", type=int, default=10, help="percent of rows held")
    args = parser.parse_args()
    setup_django("luxmail_bench_retention")
    from django.conf import settings
    from django.db import connection

    from campaigns.models import Campaign, Message
    from luxmail import holds, retention
    from luxmail.models import HoldScope, LegalHold
    from reporting.models import MessageStat

    settings.LUXMAIL_RETENTION_BATCH = args.batch
    settings.LUXMAIL_RETENTION_MAX_BATCHES = args.messages // args.batch + 10
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE campaigns_message, campaigns_deliveryproof, reporting_event, "
            "reporting_messagestat, luxmail_legalhold CASCADE"
        )
    Campaign.objects.filter(name__startswith="bench retention").delete()
    campaign = Campaign.objects.create(name="bench retention", secure_policy="tls_or_better")
    held_campaign = Campaign.objects.create(
        name="bench retention (held)", secure_policy="tls_or_better"
    )
    start = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            _FILL,
            {
                "n": args.messages,
                "held": args.held,
                "campaign": campaign.pk,
                "held_campaign": held_campaign.pk,
            },
        )
        cursor.execute("ANALYZE campaigns_message; ANALYZE reporting_event")
    filled = time.perf_counter() - start
    print(f"filled {args.messages:,} messages (+ proofs, events) in {filled:.1f} s")
    LegalHold.objects.all().delete()
    holds.legal_hold_place(
        scope=HoldScope.CAMPAIGN, object_id=held_campaign.pk, reason="bench", actor=None
    )
    stats = MessageStat.objects.count()

    start = time.perf_counter()
    dry = retention.retention_run(dry_run=True)
    dry_seconds = time.perf_counter() - start
    start = time.perf_counter()
    real = retention.retention_run()
    seconds = time.perf_counter() - start
    by_name = {r.name: r for r in real.results}
    deleted = by_name["messages"].deleted + by_name["events"].deleted
    print(f"dry run: {dry_seconds:.2f} s ({ {r.name: r.deleted for r in dry.results} })")
    print(
        f"purge: {by_name['messages'].deleted:,} messages and {by_name['events'].deleted:,} "
        f"events in {seconds:.1f} s = {deleted / seconds:,.0f} rows/s "
        f"(batches of {args.batch}), held {by_name['messages'].held:,} messages"
    )
    print(
        f"left: {Message.objects.count():,} messages; report rows {MessageStat.objects.count():,}"
        f" of {stats:,} kept"
    )
    print(f"load: {system_load()}")


if __name__ == "__main__":
    main()
