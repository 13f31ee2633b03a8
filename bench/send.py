"""Campaign send benchmark: real Celery workers into a local SMTP sink, against a naive loop.

    .venv/bin/python bench/send.py                      # 100,000 contacts
    .venv/bin/python bench/send.py --contacts 20000 --workers 1 --concurrency 4
    .venv/bin/python bench/send.py --contacts 20000 --workers 3   # runs 1, 2, 3 workers
    .venv/bin/python bench/send.py --contacts 20000 --overlap 4   # chunk loop A/B, 1 process

What it does, in the dedicated database ``luxmail_bench_send``:

1. creates N synthetic contacts with marketing consent (reused when present), a
   sender identity with an RSA-2048 DKIM key and a personalized template with three
   links, open and click tracking on;
2. starts the sink (``--sink``: Postfix ``smtp-sink`` when installed — ``sudo
   DEBIAN_FRONTEND=noninteractive apt-get install -y postfix``; it offers PIPELINING
   but not CHUNKING — else ``bench/smtp_sink.py``, which offers both)
   and ``--workers`` Celery worker processes (``--concurrency`` pool processes each)
   over Redis, starts the campaign and times it from start to ``sent``: the whole
   pipeline — claims, decryption, rendering, CSS inlining, cleaning, MIME, DKIM, SMTP
   and the status writes;
3. times the naive baseline in the same run: the same template rendered with Jinja2,
   each message built with ``email.message.EmailMessage`` and sent with ``smtplib``
   over one connection to the same sink (contacts' data handed to it in memory,
   undecrypted work not counted: the baseline does no bookkeeping at all);
4. prints messages/s of both, the ratio, the workers' peak RSS and CPU per message
   (from /proc: every worker process, PostgreSQL's backends, the sink) and the machine
   load;
5. sends ``--split`` more messages of a fresh campaign in this process through the same
   ``delivery.send_batch`` with a :class:`campaigns.sending.delivery.Stages`, and prints
   the worker CPU per message split between render, build, sign, transmit and
   bookkeeping (Celery's own overhead is not in it: compare with the workers' figure).

With ``--workers N`` (N > 1) the pipeline runs N times, with 1, 2 … N worker processes
(a fresh campaign each), and prints how throughput grows; the ratio is the N run's.

Targets (docs/performance.md, issue #16): ≥ 2,000 messages/s, ≥ 4x the baseline in the
same run, worker CPU ≤ 500 µs per message with RSA-2048 DKIM, worker RSS < 300 MB.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import smtplib
import subprocess
import sys
import tempfile
import time
import uuid
from email.message import EmailMessage
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, setup_django, system_load

# LUXMAIL_BENCH_SEND_DB: another name lets two people run the bench side by side.
DATABASE = os.environ.get("LUXMAIL_BENCH_SEND_DB", "luxmail_bench_send")
SUBJECT = "{{ contact.first_name }}, your autumn check-up"
HTML = """<html><head><style>
h1 { font-family: Georgia, serif; color: #1b4d7a; }
p { font-size: 15px; line-height: 1.5; color: #222; }
.cta { background: #1b4d7a; color: #ffffff; padding: 10px 16px; }
</style></head><body>
<h1>Hello {{ contact.first_name }} {{ contact.last_name }},</h1>
<p>It is time for your yearly check-up at {{ org.name }}. Our clinics have new evening
hours this season, and booking takes a minute.</p>
<p><a class="cta" href="https://clinic.example/book?c=autumn">Book a visit</a></p>
<p>Read <a href="https://clinic.example/flu">what to know about this year's flu shot</a>
or <a href="https://clinic.example/hours">see our opening hours</a>.</p>
<p>See you soon,<br>The {{ org.name }} team</p>
<p><a href="{{ unsubscribe_url }}">Unsubscribe</a> ·
<a href="{{ preferences_url }}">Preferences</a><br>{{ org.postal_address }}</p>
</body></html>
"""


def log(message: str) -> None:
    print(message, flush=True)


# --- data -----------------------------------------------------------------------------


def ensure_contacts(n: int) -> list[int]:
    from django.utils import timezone

    from contacts.models import Consent, Contact
    from luxmail import crypto

    existing = list(
        Contact.objects.filter(domain="bench.test").order_by("id").values_list("id", flat=True)
    )
    if len(existing) >= n:
        return existing[:n]
    log(f"creating {n - len(existing):,} contacts …")
    now = timezone.now()
    first = ["Ana", "Ben", "Chloé", "Dev", "Eli", "Fatima", "Gus", "Hana", "Ivan", "Jo"]
    start = len(existing)
    for offset in range(start, n, 5000):
        rows = []
        for i in range(offset, min(offset + 5000, n)):
            row_uuid = uuid.uuid4()
            email = f"patient{i}@bench.test"
            rows.append(
                Contact(
                    uuid=row_uuid,
                    email=crypto.sealed(Contact, "email", row_uuid, email),
                    email_bidx=crypto.blind_index("email", email),
                    domain="bench.test",
                    first_name=crypto.sealed(Contact, "first_name", row_uuid, first[i % 10]),
                    last_name=crypto.sealed(Contact, "last_name", row_uuid, f"Bench{i}"),
                )
            )
        created = Contact.objects.bulk_create(rows)
        Consent.objects.bulk_create(
            [
                Consent(contact_id=c.pk, purpose="marketing", source="import", granted_at=now)
                for c in created
            ]
        )
    return list(
        Contact.objects.filter(domain="bench.test").order_by("id").values_list("id", flat=True)
    )[:n]


def make_campaign(contact_ids: list[int], dkim: str = "rsa-sha256"):
    from campaigns import services
    from campaigns.content import footer
    from contacts.models import ContactList, ListMembership

    tag = uuid.uuid4().hex[:8]
    template = services.template_create(
        name=f"bench {tag}", subject=SUBJECT, html=footer.footer_insert(HTML), actor=None
    )
    sender = services.sender_create(
        name=f"bench {tag}",
        from_name="Springfield Clinic",
        from_email="news@clinic.example",
        actor=None,
        dkim_algorithm=dkim,
    )
    audience = ContactList.objects.create(name=f"bench {tag}")
    for offset in range(0, len(contact_ids), 20000):
        ListMembership.objects.bulk_create(
            [
                ListMembership(contact_list=audience, contact_id=i)
                for i in contact_ids[offset : offset + 20000]
            ]
        )
    return services.campaign_create(
        name=f"bench {tag}",
        actor=None,
        template=template,
        sender=sender,
        lists=[audience],
        track_opens=True,
        track_clicks=True,
    )


# --- processes --------------------------------------------------------------------------


def start_sink(port: int, count_file: Path, kind: str = "auto") -> tuple[subprocess.Popen, str]:
    postfix = shutil.which("smtp-sink") or (
        "/usr/sbin/smtp-sink" if Path("/usr/sbin/smtp-sink").exists() else None
    )
    if kind == "postfix" and not postfix:
        raise SystemExit("--sink postfix: smtp-sink not found (apt-get install postfix)")
    if postfix and kind in ("auto", "postfix"):
        # PIPELINING, no CHUNKING: LuxMail sends with DATA (one round trip a message).
        # No -c: it prints a counter line per message (CPU on the same cores); the
        # workers' rows are the count.
        process = subprocess.Popen(
            [postfix, "-u", "nobody", f"127.0.0.1:{port}", "256"], stdout=subprocess.DEVNULL
        )
        return process, "postfix smtp-sink"
    process = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "bench" / "smtp_sink.py"),
            "--port",
            str(port),
            "--count-file",
            str(count_file),
            *(["--no-chunking"] if kind == "python-data" else []),
        ]
    )
    chunking = "DATA only" if kind == "python-data" else "CHUNKING"
    return process, f"bench/smtp_sink.py (asyncio, {chunking})"


def start_workers(
    count: int, concurrency: int, port: int, broker: str, logs: Path
) -> list[subprocess.Popen]:
    env = {
        **os.environ,
        "LUXMAIL_ENV": "test",
        "LUXMAIL_CELERY_EAGER": "0",
        "DJANGO_SETTINGS_MODULE": "luxmail.settings",
        "CELERY_BROKER_URL": broker,
        "LUXMAIL_REDIS_URL": broker,
        "LUXMAIL_SMTP_HOST": "127.0.0.1",
        "LUXMAIL_SMTP_PORT": str(port),
        "LUXMAIL_SMTP_SECURITY": "none",
        "LUXMAIL_SEND_CHAINS": str(count * concurrency),
    }
    workers = []
    for index in range(count):
        log_file = open(logs / f"worker{index}.log", "wb")  # noqa: SIM115
        workers.append(
            subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "celery"),
                    "-A",
                    "luxmail",
                    "worker",
                    "--hostname",
                    f"bench{index}@%h",
                    "--concurrency",
                    str(concurrency),
                    "--without-gossip",
                    "--without-mingle",
                    "--loglevel",
                    "WARNING",
                ],
                cwd=ROOT,
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
    return workers


def wait_ready(count: int, timeout: float = 120.0) -> None:
    from luxmail.celery import app

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(app.control.ping(timeout=1.0)) >= count:
            return
    raise SystemExit("the workers did not start; see var/bench-send/worker*.log")


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its children (from /proc)."""
    total = 0.0
    pending = [pid]
    tick = os.sysconf("SC_CLK_TCK")
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
        pending += [int(c) for c in children]
    return total


def postgres_cpu_seconds() -> float:
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() not in ("postgres", "postmaster"):
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def tree_rss_mb(pid: int) -> dict[int, float]:
    """RSS of a process and its children, MB each (from /proc)."""
    result: dict[int, float] = {}
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                result[current] = int(line.split()[1]) / 1024
        pending += [int(c) for c in children]
    return result


# --- runs -------------------------------------------------------------------------------


def run_pipeline(campaign, workers: list[subprocess.Popen]) -> tuple[float, float, float]:
    from campaigns import services
    from campaigns.models import Campaign, CampaignStatus

    peak = 0.0
    cpu_before = sum(tree_cpu_seconds(w.pid) for w in workers)
    start = time.perf_counter()
    services.campaign_start(campaign=campaign, actor=None)
    while True:
        status = Campaign.objects.values_list("status", flat=True).get(pk=campaign.pk)
        for worker in workers:
            sizes = tree_rss_mb(worker.pid)
            peak = max([peak, *sizes.values()])
        if status == CampaignStatus.SENT:
            cpu = sum(tree_cpu_seconds(w.pid) for w in workers) - cpu_before
            break
        if any(w.poll() is not None for w in workers):
            raise SystemExit("a worker died; see var/bench-send/worker*.log")
        time.sleep(0.25)
    return time.perf_counter() - start, peak, cpu


def run_baseline(people: list[tuple[str, str, str]], port: int) -> float:
    import jinja2

    env = jinja2.Environment(autoescape=True)
    subject = env.from_string(SUBJECT)
    html = env.from_string(HTML)
    org = {"name": "Springfield Clinic", "postal_address": "100 Main Street, Springfield"}
    start = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        for i, (email, first, last) in enumerate(people):
            context = {
                "contact": {"first_name": first, "last_name": last, "email": email},
                "org": org,
                "unsubscribe_url": f"https://lux.example/u/{i}/",
                "preferences_url": f"https://lux.example/u/{i}/preferences/",
            }
            message = EmailMessage()
            message["From"] = "Springfield Clinic <news@clinic.example>"
            message["To"] = email
            message["Subject"] = subject.render(context)
            message.set_content("Hello " + first)
            message.add_alternative(html.render(context), subtype="html")
            smtp.send_message(message, from_addr="bounces@clinic.example", to_addrs=[email])
    return time.perf_counter() - start


def run_split(contact_ids: list[int], dkim: str, port: int) -> tuple[dict[str, float], int]:
    """Send a fresh campaign in this process with per-stage CPU accounting."""
    from unittest import mock

    from campaigns import services
    from campaigns.sending import delivery
    from campaigns.sending.transport import RelayConfig, pool

    campaign = make_campaign(contact_ids, dkim)
    # No Celery chain: this process sends the campaign itself, batch after batch.
    with mock.patch("campaigns.services.campaigns._enqueue_chains"):
        services.campaign_start(campaign=campaign, actor=None)
    config = RelayConfig(host="127.0.0.1", port=port, security="none")
    delivery.send_batch(campaign_id=campaign.pk, config=config, limit=100)  # warm caches
    stages = delivery.Stages()
    sent = 0
    while True:
        report = delivery.send_batch(campaign_id=campaign.pk, config=config, stages=stages)
        sent += report.sent
        if not report.claimed:
            break
    pool().close_all()
    return stages.seconds(), sent


def run_overlap(contact_ids: list[int], dkim: str, port: int, rounds: int) -> list[str]:
    """Wall time of one process sending batches, the chunk loop serial (compose, mark,
    transmit, compose …) and overlapped (chunk N on the wire while N+1 is composed),
    alternated batch by batch on one fresh campaign, so both see the same load."""
    from unittest import mock

    from campaigns import services
    from campaigns.sending import delivery
    from campaigns.sending.transport import RelayConfig, pool

    campaign = make_campaign(contact_ids, dkim)
    with mock.patch("campaigns.services.campaigns._enqueue_chains"):
        services.campaign_start(campaign=campaign, actor=None)
    config = RelayConfig(host="127.0.0.1", port=port, security="none")
    delivery.send_batch(campaign_id=campaign.pk, config=config, limit=100)  # warm caches
    wall = {False: 0.0, True: 0.0}
    cpu = {False: 0.0, True: 0.0}
    sent = {False: 0, True: 0}
    for index in range(rounds * 2):
        overlap = bool(index % 2)
        start, start_cpu = time.perf_counter(), time.process_time()
        report = delivery.send_batch(campaign_id=campaign.pk, config=config, overlap=overlap)
        wall[overlap] += time.perf_counter() - start
        cpu[overlap] += time.process_time() - start_cpu
        sent[overlap] += report.sent
        if not report.claimed:
            break
    pool().close_all()
    return [
        f"{'overlapped' if overlap else 'serial'}: {sent[overlap]:,} messages, "
        f"{sent[overlap] / wall[overlap]:,.0f} messages/s in one process, "
        f"CPU {cpu[overlap] / wall[overlap] * 100:.0f}% of wall"
        for overlap in (False, True)
        if sent[overlap]
    ]


def run_workers(
    contact_ids: list[int], args: argparse.Namespace, count: int, logs: Path
) -> dict[str, float]:
    campaign = make_campaign(contact_ids, args.dkim)
    warm = make_campaign(contact_ids[: 100 * count * args.concurrency], args.dkim)
    workers = start_workers(count, args.concurrency, args.port, args.broker, logs)
    try:
        # The clock starts once every worker answers and a small campaign went through
        # them (Django set-up, first-task imports and caches are not what is measured).
        wait_ready(count)
        run_pipeline(warm, workers)
        load_before = system_load()
        pg_before = postgres_cpu_seconds()
        sink_before = tree_cpu_seconds(SINK_PID[0])
        elapsed, peak_rss, worker_cpu = run_pipeline(campaign, workers)
        pg_cpu = postgres_cpu_seconds() - pg_before
        sink_cpu = tree_cpu_seconds(SINK_PID[0]) - sink_before
    finally:
        for worker in workers:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGTERM)
        for worker in workers:
            worker.wait(timeout=60)
    from campaigns.selectors import campaign_counts

    counts = campaign_counts(campaign)
    sent = counts["sent"]
    return {
        "workers": count,
        "sent": sent,
        "total": sum(counts.values()),
        "counts": counts,
        "elapsed": elapsed,
        "rate": sent / elapsed,
        "rss": peak_rss,
        "worker_us": worker_cpu / sent * 1e6,
        "pg_us": pg_cpu / sent * 1e6,
        "sink_us": sink_cpu / sent * 1e6,
        "load": load_before,
    }


SINK_PID = [0]


def _split_line(split: dict[str, float], sent: int) -> str:
    total = sum(split.values())
    parts = ", ".join(f"{stage} {seconds / sent * 1e6:,.0f}" for stage, seconds in split.items())
    return f"{total / sent * 1e6:,.0f} us per message over {sent:,}: {parts} (us)"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes (each a prefork pool); above 1, runs 1 … N and compares",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=os.cpu_count() or 1,
        help="pool processes per worker (default: one per core)",
    )
    parser.add_argument("--baseline", type=int, default=10_000, help="messages in the naive loop")
    parser.add_argument(
        "--split", type=int, default=5_000, help="messages sent in-process for the CPU split"
    )
    parser.add_argument(
        "--only-split",
        action="store_true",
        help="only the in-process send (for a profiler: py-spy record -- … --only-split)",
    )
    parser.add_argument(
        "--overlap",
        type=int,
        default=0,
        metavar="BATCHES",
        help="only compare one process's chunk loop serial vs overlapped, BATCHES each",
    )
    parser.add_argument("--dkim", choices=["rsa-sha256", "ed25519-sha256"], default="rsa-sha256")
    parser.add_argument(
        "--broker", default=os.environ.get("LUXMAIL_BENCH_BROKER", "redis://127.0.0.1:6379/13")
    )
    parser.add_argument("--port", type=int, default=2526)
    parser.add_argument(
        "--sink",
        choices=["auto", "postfix", "python", "python-data"],
        default="auto",
        help="auto: Postfix smtp-sink when installed, else bench/smtp_sink.py "
        "(python: offers CHUNKING, so BDAT; python-data: without it)",
    )
    args = parser.parse_args()

    os.environ["CELERY_BROKER_URL"] = args.broker
    os.environ["LUXMAIL_REDIS_URL"] = args.broker
    os.environ["LUXMAIL_CELERY_EAGER"] = "0"
    setup_django(DATABASE)
    os.environ["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{DATABASE}"
    # The bench organization has no quiet hours: its campaigns go out at whatever hour
    # the benchmark runs (with the default 21:00-08:00 they would wait for the morning).
    from luxmail.models import OrgSettings

    OrgSettings.objects.get_or_create(pk=1)
    OrgSettings.objects.filter(pk=1).update(quiet_hours_start=0, quiet_hours_end=0)
    import redis
    from django.db import connection

    from luxmail.celery import app

    app.conf.task_always_eager = False
    redis.Redis.from_url(args.broker).flushdb()

    contact_ids = ensure_contacts(max(args.contacts, args.split))
    # Earlier runs leave dead row versions behind (every message is updated two or three
    # times); where autovacuum is off (CI's PostgreSQL turns it off) they pile up and the
    # claim's index probes slow down by 25x. Start from a vacuumed table, as autovacuum
    # keeps a production database. The contacts' tables are analyzed after they exist:
    # on a fresh database they were created just now, and without statistics the claim's
    # eligibility checks were planned for empty tables (PostgreSQL spent about twice its
    # usual CPU per message on the first run).
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE campaigns_message")
        cursor.execute(
            "ANALYZE contacts_contact, contacts_consent, contacts_suppression, "
            "contacts_contactpreference"
        )
    logs = ROOT / "var" / "bench-send"
    logs.mkdir(parents=True, exist_ok=True)
    count_file = Path(tempfile.mkstemp(prefix="sink-count-")[1])
    sink, sink_name = start_sink(args.port, count_file, args.sink)
    SINK_PID[0] = sink.pid
    time.sleep(0.5)
    if args.overlap:
        lines = run_overlap(
            contact_ids[: args.overlap * 2 * 500 + 100], args.dkim, args.port, args.overlap
        )
        sink.send_signal(signal.SIGTERM)
        sink.wait(timeout=10)
        for line in lines:
            log(line)
        log(f"load: {system_load()}")
        return
    if args.only_split:
        split, split_sent = run_split(contact_ids[: args.split], args.dkim, args.port)
        sink.send_signal(signal.SIGTERM)
        sink.wait(timeout=10)
        log(f"in-process split ({args.dkim}): {_split_line(split, split_sent)}")
        log(f"load: {system_load()}")
        return
    runs = [
        run_workers(contact_ids[: args.contacts], args, count, logs)
        for count in range(1 if args.workers > 1 else args.workers, args.workers + 1)
    ]
    run = runs[-1]

    # Baseline: the same contacts' data, decrypted up front (not timed).
    from campaigns.content.context import recipients
    from luxmail import crypto

    sample = contact_ids[: args.baseline]
    access = crypto.phi_access(actor=None, purpose="bench.baseline")
    found = recipients(
        sample, fields={("contact", "first_name"), ("contact", "last_name")}, access=access
    )
    people = [
        (
            found[i].email,
            found[i].context["contact"]["first_name"],
            found[i].context["contact"]["last_name"],
        )
        for i in sample
    ]
    load_baseline = system_load()
    baseline_elapsed = run_baseline(people, args.port)
    baseline_rate = len(people) / baseline_elapsed
    split, split_sent = (
        run_split(contact_ids[: args.split], args.dkim, args.port) if args.split else ({}, 0)
    )
    sink.send_signal(signal.SIGTERM)
    sink.wait(timeout=10)
    received = count_file.read_text().strip() if count_file.exists() else "?"
    count_file.unlink(missing_ok=True)

    rate = run["rate"]
    log("")
    log("=== campaign send benchmark ===")
    log(f"sink:                {sink_name}")
    log(f"DKIM:                {args.dkim}")
    log(f"workers:             {args.workers} x {args.concurrency} pool processes")
    log(f"messages:            {run['sent']:,} sent of {run['total']:,} ({run['counts']})")
    log(f"sink received:       {received} (pipeline runs + baseline + split)")
    log(
        f"pipeline:            {run['elapsed']:.2f} s  ->  {rate:,.0f} messages/s   "
        "(target >= 2,000)"
    )
    log(
        f"naive baseline:      {baseline_elapsed:.2f} s for {len(people):,}  ->  "
        f"{baseline_rate:,.0f} messages/s   (load {load_baseline})"
    )
    log(f"ratio:               {rate / baseline_rate:.2f}x   (target >= 4x)")
    log(f"worker peak RSS:     {run['rss']:.0f} MB per process   (target < 300 MB)")
    target = 500 if args.dkim == "rsa-sha256" else 250
    log(
        f"CPU per message:     workers {run['worker_us']:,.0f} us (target <= {target}), "
        f"PostgreSQL {run['pg_us']:,.0f} us (all backends), sink {run['sink_us']:,.0f} us"
    )
    if split_sent:
        log(f"in-process split:    {_split_line(split, split_sent)}")
    if len(runs) > 1:
        log("scaling:")
        for each in runs:
            log(
                f"  {each['workers']} worker(s) x {args.concurrency}: "
                f"{each['rate']:>7,.0f} messages/s  ({each['rate'] / runs[0]['rate']:.2f}x), "
                f"workers {each['worker_us']:,.0f} us/message, load before {each['load']}"
            )
    log(f"load before / after: {run['load']}  /  {system_load()}")
    log("tracking:            opens and clicks on (three tracked links and the open pixel)")


if __name__ == "__main__":
    main()
