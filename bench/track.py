"""Tracking endpoint benchmark: open pixel and click redirect against a bare Django view.

    .venv/bin/python bench/track.py                    # 10 s per endpoint, 2 rounds
    .venv/bin/python bench/track.py --seconds 20 --rounds 3 --connections 8

In the dedicated database ``luxmail_bench_track`` and on a private ``redis-server``
started for the run with ``appendonly yes`` + ``appendfsync always`` (what production
requires: an answered hit is fsynced before the answer; ``--redis-url`` uses another
Redis, whose durability the start-up check then reports):

1. creates a sent campaign with 20,000 messages and three tracked links, and writes
   the open and click paths of every message (real signed tokens) to a file;
2. starts ``gunicorn luxmail.wsgi`` with 2 gthread workers of 8 threads on loopback
   (``--threads 1``: sync workers), with bench
   settings that add two views answering the same 43-byte GIF:
   * ``/bench/pixel`` — a bare Django view behind the project's whole middleware stack
     (what any view pays: sessions, auth, CSRF, MFA gate, CSP …) — the baseline the
     target is defined against;
   * ``/bench/fastpixel`` — the same view answered at the tracking endpoints' position
     in the stack (right after SecurityMiddleware): Django's own minimum, to show
     what the token check and the durable append cost;
3. drives each endpoint with ``wrk`` (cycling through all messages' tokens) for
   ``--seconds``, ``--rounds`` times in turn, and prints the median requests/s, the
   ratios and the load average;
4. counts the tracking requests gunicorn answered (a ``post_request`` hook), ingests
   the buffer and checks that every answered request became a stored event.

Target (DESIGN.md §6): ≥ 80 % of the bare view's requests/s; no event lost.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import PG_URL, ROOT, setup_django, system_load

DATABASE = "luxmail_bench_track"
MESSAGES = 20_000
HTML = (
    "<html><body><p>Hello {{ contact.first_name }}</p>"
    '<p><a href="https://clinic.example/book">Book</a> '
    '<a href="https://clinic.example/flu">Flu</a> '
    '<a href="https://clinic.example/hours">Hours</a></p>'
    '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p></body></html>'
)
AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Safari/537.36"
)

SETTINGS_MODULE = """
from luxmail.settings import *  # noqa: F403

ROOT_URLCONF = "bench_track_urls"
MIDDLEWARE = list(MIDDLEWARE)  # noqa: F405
MIDDLEWARE.insert(MIDDLEWARE.index("reporting.middleware.TrackingFastPathMiddleware"),
                  "bench_track_urls.FastPixelMiddleware")
"""
URLS_MODULE = """
import base64

from django.http import HttpResponse
from django.urls import path

from luxmail.urls import urlpatterns as project

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


def pixel(request):
    response = HttpResponse(PIXEL, content_type="image/gif")
    response["Cache-Control"] = "no-store, no-cache, must-revalidate, private, max-age=0"
    return response


class FastPixelMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info == "/bench/fastpixel":
            return pixel(request)
        return self.get_response(request)


urlpatterns = [path("bench/pixel", pixel), *project]
"""
GUNICORN_CONFIG = """
import json
import os

counts = {"answered": 0}


def post_request(worker, req, environ, resp):
    status = int(str(resp.status).split()[0]) if resp.status else 0
    if environ.get("PATH_INFO", "").startswith("/t/") and status < 400:
        counts["answered"] += 1


def worker_exit(server, worker):
    with open(os.path.join(os.environ["BENCH_COUNT_DIR"], f"{worker.pid}.json"), "w") as f:
        json.dump(counts, f)
"""
LUA = """
local paths = {}
for line in io.lines(os.getenv("BENCH_PATHS")) do paths[#paths + 1] = line end
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("start", counter * 7919)
end
function init(args)
  position = start
end
function request()
  position = position % #paths + 1
  return wrk.format("GET", paths[position], {["User-Agent"] = os.getenv("BENCH_AGENT")})
end
"""


def log(message: str) -> None:
    print(message, flush=True)


def prepare() -> tuple[int, list[str], list[str]]:
    from django.utils import timezone

    from campaigns.models import Campaign, CampaignStatus, Message
    from reporting import tracking
    from reporting.models import Event, PendingEvent

    campaign = Campaign.objects.filter(name="bench-track").first()
    if campaign is None:
        now = timezone.now()
        campaign = Campaign.objects.create(
            name="bench-track",
            secure_policy="tls_or_better",
            status=CampaignStatus.SENT,
            frozen_subject="Hello",
            frozen_html=HTML,
            started_at=now,
            finished_at=now,
        )
        sent = now - timezone.timedelta(hours=1)
        for start in range(0, MESSAGES, 5000):
            Message.objects.bulk_create(
                [
                    Message(
                        campaign=campaign,
                        state="sent",
                        channel="tls",
                        sending_at=sent,
                        finished_at=sent,
                    )
                    for _ in range(min(5000, MESSAGES - start))
                ]
            )
    Event.objects.filter(campaign=campaign).delete()
    PendingEvent.objects.all().delete()
    tracking.forget_plans()
    plan = tracking.plan_for_sending(campaign.pk)  # freezes the links, caches them in Redis
    ids = list(Message.objects.filter(campaign=campaign).values_list("id", flat=True))
    opens = [
        "/" + tracking.open_url(message_id=i, campaign_id=campaign.pk).split("/", 3)[3] for i in ids
    ]
    clicks = [
        "/"
        + tracking.click_url(message_id=i, campaign_id=campaign.pk, link_index=1 + n % 3).split(
            "/", 3
        )[3]
        for n, i in enumerate(ids)
    ]
    assert plan.link_count == 3
    return campaign.pk, opens, clicks


def run_wrk(
    port: int, path: str, paths_file: Path | None, seconds: int, connections: int
) -> tuple[float, int]:
    env = {**os.environ, "BENCH_AGENT": AGENT}
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if paths_file is not None:
        env["BENCH_PATHS"] = str(paths_file)
        command += ["-s", str(paths_file.with_suffix(".lua"))]
    command.append(f"http://127.0.0.1:{port}{path}")
    output = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    if "Non-2xx or 3xx responses" in output:
        raise SystemExit(f"wrk saw errors on {path}:\n{output}")
    return rate, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--threads",
        type=int,
        default=8,
        help="gunicorn threads per worker (>1: gthread workers, as docs/operations.md "
        "deploys them: each hit waits for Redis's fsync, and threads overlap those waits, "
        "which Redis commits together; 1: sync workers)",
    )
    parser.add_argument("--database", default=DATABASE)
    parser.add_argument(
        "--redis-url", help="use this Redis instead of a private fsync-always redis-server"
    )
    args = parser.parse_args()
    log(f"machine load at start: {system_load()}")

    from luxmail.testing import RedisServer

    redis_server = None
    redis_url = args.redis_url
    if redis_url is None:
        redis_dir = Path(tempfile.mkdtemp(prefix="bench-track-redis-"))
        redis_server = RedisServer(redis_dir, appendonly="yes", appendfsync="always").start()
        redis_url = redis_server.url(0)
    try:
        run(args, redis_url)
    finally:
        if redis_server is not None:
            redis_server.stop()


def run(args: argparse.Namespace, redis_url: str) -> None:
    os.environ["LUXMAIL_REDIS_URL"] = redis_url
    setup_django(args.database)
    from reporting import buffer, ingest

    problem = buffer.durability_problem()
    log(
        "tracking store: "
        + (f"NOT DURABLE: {problem.message}" if problem else "durable (start-up check passes)")
    )
    client = buffer.redis_client()
    client.delete(buffer.STREAM)
    campaign_id, opens, clicks = prepare()
    log(f"campaign {campaign_id}: {len(opens):,} messages, 3 tracked links")

    work = Path(tempfile.mkdtemp(prefix="bench-track-"))
    (work / "bench_track_settings.py").write_text(SETTINGS_MODULE)
    (work / "bench_track_urls.py").write_text(URLS_MODULE)
    (work / "gunicorn_conf.py").write_text(GUNICORN_CONFIG)
    counts_dir = work / "counts"
    counts_dir.mkdir()
    for name, paths in (("opens", opens), ("clicks", clicks)):
        (work / f"{name}.txt").write_text("\n".join(paths) + "\n")
        (work / f"{name}.lua").write_text(LUA)

    port = 18_000 + os.getpid() % 1000
    env = {
        **os.environ,
        "PYTHONPATH": f"{work}:{ROOT}",
        "DJANGO_SETTINGS_MODULE": "bench_track_settings",
        "LUXMAIL_ENV": "test",
        "DATABASE_URL": PG_URL.format(name=args.database),
        "LUXMAIL_REDIS_URL": redis_url,
        "LUXMAIL_LOG_LEVEL": "WARNING",
        "BENCH_COUNT_DIR": str(counts_dir),
    }
    gunicorn = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "luxmail.wsgi:application",
            "--workers",
            "2",
            "--bind",
            f"127.0.0.1:{port}",
            "--config",
            str(work / "gunicorn_conf.py"),
            "--log-level",
            "warning",
            "--backlog",
            "2048",
            *(
                ["--worker-class", "gthread", "--threads", str(args.threads)]
                if args.threads > 1
                else []
            ),
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        for _ in range(100):
            try:
                subprocess.run(
                    ["curl", "-sf", "-o", "/dev/null", f"http://127.0.0.1:{port}/bench/fastpixel"],
                    check=True,
                )
                break
            except subprocess.CalledProcessError:
                time.sleep(0.2)
        targets = {
            "bare view (full stack)": ("/bench/pixel", None),
            "bare view (fast path)": ("/bench/fastpixel", None),
            "open pixel": ("/", work / "opens.txt"),
            "click redirect": ("/", work / "clicks.txt"),
        }
        for path, paths_file in targets.values():  # warm up every process and cache
            run_wrk(port, path, paths_file, 2, args.connections)
        rates: dict[str, list[float]] = {name: [] for name in targets}
        wrk_tracking = 0
        for round_number in range(args.rounds):
            for name, (path, paths_file) in targets.items():
                rate, total = run_wrk(port, path, paths_file, args.seconds, args.connections)
                rates[name].append(rate)
                if paths_file is not None:
                    wrk_tracking += total
                log(f"round {round_number + 1}: {name:24s} {rate:10,.0f} req/s")
    finally:
        gunicorn.send_signal(signal.SIGTERM)
        gunicorn.wait(timeout=60)

    answered = sum(json.loads(path.read_text())["answered"] for path in counts_dir.glob("*.json"))
    started = time.perf_counter()
    report = ingest.IngestReport()
    from django.db import OperationalError, connection

    failures = 0
    while True:
        try:
            batch = ingest.ingest(limit=5000, max_batches=100)
        except OperationalError as error:  # a shared PostgreSQL restarted: retry
            failures += 1
            if failures > 30:
                raise
            log(f"ingest: database error ({str(error).strip()[:80]}); retrying")
            connection.close()
            time.sleep(2)
            continue
        report.add(batch)
        if batch.read == 0:
            break
    ingest_seconds = time.perf_counter() - started
    from reporting.models import Event

    stored = Event.objects.filter(campaign_id=campaign_id).count()
    medians = {name: statistics.median(values) for name, values in rates.items()}
    full, fast = medians["bare view (full stack)"], medians["bare view (fast path)"]
    log("")
    log(f"machine load: {system_load()}")
    log(
        f"gunicorn: 2 workers x {args.threads} thread(s); wrk: 1 thread, {args.connections} "
        f"connections, {args.seconds} s x {args.rounds} rounds"
    )
    for name, value in medians.items():
        log(f"{name:24s} {value:10,.0f} req/s (median)")
    for name in ("open pixel", "click redirect"):
        log(
            f"{name:24s} ratio {medians[name] / full:.2f} of the bare view (target >= 0.8), "
            f"{medians[name] / fast:.2f} of Django's minimum"
        )
    log(
        f"tracking requests answered by gunicorn: {answered:,} (wrk counted {wrk_tracking:,}; "
        "requests cut off when wrk stops are answered but not counted by wrk)"
    )
    log(
        f"events stored: {stored:,} (ingested {report.stored:,} in {ingest_seconds:.1f} s, "
        f"{report.stored / max(ingest_seconds, 1e-9):,.0f} events/s; dropped {report.dropped})"
    )
    log("no event lost" if stored == answered else f"MISMATCH: {answered - stored} events missing")


if __name__ == "__main__":
    main()
