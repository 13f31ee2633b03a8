"""Fault-injection harness (Jepsen style): kill things at bad moments, then check the books.

    .venv/bin/python bench/faults.py                      # every scenario
    .venv/bin/python bench/faults.py --scenario worker_sigkill --quick
    .venv/bin/python bench/faults.py --list

Everything runs on this machine against real components, each started and killed by
the harness: PostgreSQL (127.0.0.1:5432, database ``luxmail_faults``, created and
migrated at the start and dropped at the end unless ``--keep-db``), a throwaway
``redis-server`` per scenario (temporary directory, ``appendonly yes``,
``appendfsync always`` unless ``--redis-appendfsync``), ``celery -A luxmail worker``
and ``beat`` processes, gunicorn for the tracking endpoints, and an SMTP sink (this
file, ``--serve-sink``) that appends every message it receives — recipient, the
message id from the Message-ID header, time, and whether it answered ``250`` or
dropped the connection after the data — to a JSON-lines log before answering.

Scenarios (``--list``):

* ``worker_sigkill`` — SIGKILL the whole worker (pool included) repeatedly
  mid-campaign and restart it at once; reports the recovery time (kill → next mail
  at the sink).
* ``lease_expiry`` — 3-s leases; SIGSTOP the worker mid-batch until its lease expires,
  let a second sender (this process, ``delivery.send_batch``) reclaim and send a few of
  its rows, then SIGCONT it.
* ``smtp_drop_after_data`` — the sink drops the connection after the data of every
  50th message without answering: those must end ``unknown`` (never resent).
* ``redis_sigkill_tracking`` — a burst of open/click requests through gunicorn while
  Redis is SIGKILLed and restarted twice; every request answered 200/302 must become
  exactly one stored event after ingestion.
* ``postgres_restart`` — ``pg_ctlcluster <version> main restart`` mid-campaign (it
  restarts the machine's shared PostgreSQL: other users see their connections drop).
* ``pause_resume_throttle`` — 10 pause/resume toggles of a throttled campaign; the
  highest send rate over sliding windows against the throttle.

Each scenario prints one line::

    scenario=<name> sent=<n> duplicates=<n> lost=<n> unknown=<n> max_rate_vs_throttle=<x> …

where, per message of the scenario's campaign (see :func:`compare_delivery`):
``sent`` — the database says ``sent``; ``duplicates`` — deliveries at the sink beyond
the first; ``lost`` — the database says ``sent`` but the sink never accepted it, or the
message is still queued/deferred/sending at the scenario's deadline without having
reached the sink; ``unknown`` — the database says ``unknown`` (the honest answer for
a message whose server reply never came). Extra fields: ``stuck`` (still open at the
deadline), ``untracked`` (delivered while the database says failed/skipped/cancelled/
queued), ``recovery_s`` (worker kill → next delivery), ``elapsed_s`` and the load
average. For the tracking scenario ``sent`` is the number of requests answered
200/302, ``lost`` those without a stored event, ``duplicates`` extra events for one
request and ``unknown`` requests that got no answer or an error (the client may retry).

The last line is ``faults: duplicates=<total> lost=<total>``; the exit status is 1
when either total is above zero.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DATABASE = "luxmail_faults"
OPEN_STATES = frozenset({"queued", "deferred", "sending"})
DELIVERED_OK_STATES = frozenset({"sent", "unknown", "sending"})
# A message is "delivered" at the sink whether the sink answered 250 or dropped the
# connection after the data: in both cases a real server may have queued it.
ACCEPTED = "accepted"
# Seconds after a fault before a delivery counts as recovery (in-flight mail lands first).
MARGIN = 0.5
DROPPED = "dropped"


# --- accounting (pure functions; tests/test_bench_faults.py) --------------------------------


@dataclass(frozen=True)
class Receipt:
    """One message the sink received: its message id (from the Message-ID header, None
    when unreadable), recipient, time and what the sink answered."""

    message_id: int | None
    recipient: str
    at: float
    outcome: str = ACCEPTED


@dataclass
class Tally:
    sent: int = 0
    duplicates: int = 0
    lost: int = 0
    unknown: int = 0
    stuck: int = 0
    untracked: int = 0
    stray: int = 0
    extra: dict[str, str] = field(default_factory=dict)

    def line(self, name: str, max_rate_vs_throttle: float | None) -> str:
        rate = "n/a" if max_rate_vs_throttle is None else f"{max_rate_vs_throttle:.2f}"
        fields = [
            f"scenario={name}",
            f"sent={self.sent}",
            f"duplicates={self.duplicates}",
            f"lost={self.lost}",
            f"unknown={self.unknown}",
            f"max_rate_vs_throttle={rate}",
            f"stuck={self.stuck}",
            f"untracked={self.untracked}",
        ]
        fields += [f"{key}={value}" for key, value in self.extra.items()]
        return " ".join(fields)


def compare_delivery(states: dict[int, str], receipts: Iterable[Receipt]) -> Tally:
    """Check the sink's receipts against the database's final message states.

    ``states`` maps each message id of the campaign to its state in the database.
    Receipts for ids outside ``states`` (or without an id) are counted as ``stray``.
    """
    delivered: Counter[int] = Counter()
    accepted: Counter[int] = Counter()
    tally = Tally()
    for receipt in receipts:
        if receipt.message_id is None or receipt.message_id not in states:
            tally.stray += 1
            continue
        delivered[receipt.message_id] += 1
        if receipt.outcome == ACCEPTED:
            accepted[receipt.message_id] += 1
    for message_id, state in states.items():
        count = delivered[message_id]
        tally.duplicates += max(count - 1, 0)
        if state == "sent":
            tally.sent += 1
            if accepted[message_id] == 0:
                tally.lost += 1  # the database says sent; the server never said 250
        elif state == "unknown":
            tally.unknown += 1
        elif state in OPEN_STATES:
            tally.stuck += 1
            if count == 0:
                tally.lost += 1  # neither delivered nor given up on: nobody will send it
        if count and state not in DELIVERED_OK_STATES:
            tally.untracked += 1
    return tally


def compare_tracking(
    accepted: Iterable[int], failed: int, ingested: Iterable[int], *, stray: int = 0
) -> Tally:
    """Check tracking requests against stored events.

    ``accepted``: the hit numbers answered 200/302; ``failed``: requests without such an
    answer; ``ingested``: the hit number of every stored event (one per event).
    """
    wanted = set(accepted)
    stored = Counter(ingested)
    tally = Tally(sent=len(wanted), unknown=failed, stray=stray)
    tally.duplicates = sum(count - 1 for count in stored.values() if count > 1)
    tally.lost = sum(1 for hit in wanted if stored[hit] == 0)
    return tally


def max_rate_ratio(times: Iterable[float], *, per_minute: int, window: float) -> float:
    """The highest number of deliveries in any ``window`` seconds, against what the
    throttle allows in that time (1.0 = exactly the throttle)."""
    ordered = sorted(times)
    if not ordered or per_minute <= 0:
        return 0.0
    best = 0
    start = 0
    for end, moment in enumerate(ordered):
        while moment - ordered[start] > window:
            start += 1
        best = max(best, end - start + 1)
    return best / (per_minute * window / 60.0)


# --- the SMTP sink (a subprocess: --serve-sink) ---------------------------------------------

_MESSAGE_ID = re.compile(rb"^message-id:\s*<([^>\r\n]+)>", re.IGNORECASE | re.MULTILINE)


async def _sink_session(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    log: Callable[[dict[str, object]], None],
    counter: list[int],
    drop_every: int,
    delay: float,
) -> None:
    writer.write(b"220 faults-sink ESMTP\r\n")
    recipient = ""
    try:
        while True:
            line = await reader.readline()
            if not line:
                return
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                writer.write(b"250-faults-sink\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
            elif verb == b"RCPT":
                recipient = line.split(b":", 1)[-1].strip().strip(b"<>").decode(errors="replace")
                writer.write(b"250 OK\r\n")
            elif verb == b"DATA":
                writer.write(b"354 go ahead\r\n")
                await writer.drain()
                data = await reader.readuntil(b"\r\n.\r\n")
                header = data.split(b"\r\n\r\n", 1)[0]
                found = _MESSAGE_ID.search(header)
                counter[0] += 1
                drop = drop_every > 0 and counter[0] % drop_every == 0
                if delay:
                    await asyncio.sleep(delay)
                log(
                    {
                        "rcpt": recipient,
                        "mid": found.group(1).decode(errors="replace") if found else "",
                        "at": time.time(),
                        "outcome": DROPPED if drop else ACCEPTED,
                    }
                )
                if drop:
                    writer.transport.abort()
                    return
                writer.write(b"250 2.0.0 queued\r\n")
            elif verb == b"QUIT":
                writer.write(b"221 bye\r\n")
                await writer.drain()
                writer.close()
                return
            else:  # MAIL, RSET, NOOP
                writer.write(b"250 OK\r\n")
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        return
    finally:
        if not writer.is_closing():
            writer.close()


async def _serve_sink(port: int, log_path: Path, drop_every: int, delay: float) -> None:
    handle = open(log_path, "a", buffering=1)  # noqa: SIM115 - lives as long as the server
    counter = [0]

    def log(record: dict[str, object]) -> None:
        handle.write(json.dumps(record) + "\n")
        handle.flush()

    server = await asyncio.start_server(
        lambda r, w: _sink_session(r, w, log, counter, drop_every, delay),
        "127.0.0.1",
        port,
        limit=8 * 1024 * 1024,
        backlog=256,
    )
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()
    handle.close()


def read_receipts(log_path: Path, decode: Callable[[str], int | None]) -> list[Receipt]:
    receipts = []
    if not log_path.exists():
        return receipts
    for line in log_path.read_text().splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        receipts.append(
            Receipt(decode(record["mid"]), record["rcpt"], record["at"], record["outcome"])
        )
    return receipts


# --- processes -------------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"  [{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise SystemExit(f"nothing answers on port {port} after {timeout:.0f} s")


def kill_group(process: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    """Signal a process started with ``start_new_session`` and all its children."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


class Redis:
    """A throwaway redis-server in its own directory, killable and restartable."""

    def __init__(self, port: int, work: Path, appendfsync: str):
        self.port = port
        self.dir = work / "redis"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.appendfsync = appendfsync
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.dir),
                "--appendonly",
                "no" if self.appendfsync == "off" else "yes",
                "--appendfsync",
                "no" if self.appendfsync == "off" else self.appendfsync,
                "--save",
                "",
                "--daemonize",
                "no",
                "--logfile",
                str(self.dir / "redis.log"),
            ],
            start_new_session=True,
        )
        wait_port(self.port)
        import redis

        client = redis.Redis.from_url(self.url)
        for _ in range(100):  # answers PING only once the append-only file is loaded
            with contextlib.suppress(redis.RedisError):
                if client.ping():
                    return
            time.sleep(0.1)

    def kill(self) -> None:
        if self.process is not None:
            kill_group(self.process)
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            kill_group(self.process, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=10)
            self.kill()


@dataclass
class Env:
    """What one run shares: the work directory, ports, the database URL."""

    work: Path
    redis_port: int
    sink_port: int
    database_url: str
    appendfsync: str
    quick: bool
    children: list[subprocess.Popen] = field(default_factory=list)

    def base_env(self, **overrides: str) -> dict[str, str]:
        url = f"redis://127.0.0.1:{self.redis_port}/0"
        return {
            **os.environ,
            "LUXMAIL_ENV": "test",
            "LUXMAIL_CELERY_EAGER": "0",
            "LUXMAIL_VAR_DIR": str(self.work / "var"),
            "DJANGO_SETTINGS_MODULE": "luxmail.settings",
            "DATABASE_URL": self.database_url,
            "CELERY_BROKER_URL": url,
            "LUXMAIL_REDIS_URL": url,
            "LUXMAIL_SMTP_HOST": "127.0.0.1",
            "LUXMAIL_SMTP_PORT": str(self.sink_port),
            "LUXMAIL_SMTP_SECURITY": "none",
            "LUXMAIL_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
            **overrides,
        }

    def spawn(self, args: list[str], name: str, env: dict[str, str]) -> subprocess.Popen:
        logs = self.work / "logs"
        logs.mkdir(exist_ok=True)
        handle = open(logs / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
        handle.close()
        self.children.append(process)
        return process

    def start_sink(self, log_path: Path, *, drop_every: int = 0, delay: float = 0.0):
        process = self.spawn(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--serve-sink",
                "--port",
                str(self.sink_port),
                "--sink-log",
                str(log_path),
                "--drop-every",
                str(drop_every),
                "--delay",
                str(delay),
            ],
            "sink",
            self.base_env(),
        )
        wait_port(self.sink_port)
        return process

    def start_worker(self, name: str, concurrency: int, **overrides: str) -> subprocess.Popen:
        celery = str(Path(sys.executable).with_name("celery"))
        return self.spawn(
            [
                celery,
                "-A",
                "luxmail",
                "worker",
                "--hostname",
                f"{name}@%h",
                "--concurrency",
                str(concurrency),
                "--without-gossip",
                "--without-mingle",
                "--loglevel",
                "WARNING",
            ],
            name,
            self.base_env(**overrides),
        )

    def start_beat(self, **overrides: str) -> subprocess.Popen:
        celery = str(Path(sys.executable).with_name("celery"))
        schedule = self.work / f"beat-{time.monotonic_ns()}"
        return self.spawn(
            [celery, "-A", "luxmail", "beat", "--schedule", str(schedule), "--loglevel", "WARNING"],
            "beat",
            self.base_env(**overrides),
        )

    def stop_all(self) -> None:
        for process in self.children:
            if process.poll() is None:
                kill_group(process, signal.SIGCONT)
                kill_group(process, signal.SIGTERM)
        for process in self.children:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                kill_group(process)
                process.wait()
        self.children.clear()


# --- data ---------------------------------------------------------------------------------------


def decode_message_id(mid: str) -> int | None:
    """``<bounce-token>.<campaign>@domain`` → the message id inside the bounce token."""
    from campaigns.sending import tokens

    token = mid.split(".", 1)[0]
    try:
        return tokens.read(tokens.BOUNCE, token)
    except tokens.InvalidToken:
        return None


def make_campaign(recipients: int, *, throttle: int | None = None):
    """A draft campaign to ``recipients`` synthetic contacts (bench/send.py's data)."""
    from bench.send import ensure_contacts
    from bench.send import make_campaign as bench_campaign
    from campaigns import services

    campaign = bench_campaign(ensure_contacts(recipients))
    services.campaign_update(
        campaign=campaign,
        actor=None,
        throttle_per_minute=throttle,
        track_opens=False,
        track_clicks=False,
    )
    return campaign


def db_retry(func: Callable[[], object], attempts: int = 60) -> object:
    """Run ``func``, reconnecting while PostgreSQL restarts."""
    from django.db import OperationalError, connection
    from django.db.utils import InterfaceError

    for attempt in range(attempts):
        try:
            return func()
        except (OperationalError, InterfaceError):
            connection.close()
            if attempt == attempts - 1:
                raise
            time.sleep(0.5)
    return None


def message_states(campaign_id: int) -> dict[int, str]:
    from campaigns.models import Message

    def states() -> dict[int, str]:
        return dict(Message.objects.filter(campaign_id=campaign_id).values_list("id", "state"))

    result = db_retry(states)
    assert isinstance(result, dict)
    return result


def open_count(campaign_id: int) -> int:
    from campaigns.models import Message

    count = db_retry(
        lambda: Message.objects.filter(campaign_id=campaign_id, state__in=OPEN_STATES).count()
    )
    assert isinstance(count, int)
    return count


def load() -> str:
    try:
        return "{:.2f}/{:.2f}/{:.2f}".format(*os.getloadavg())
    except OSError:
        return "unknown"


# --- campaign scenarios -------------------------------------------------------------------------


@dataclass
class Run:
    env: Env
    name: str
    recipients: int
    throttle: int | None = None
    drop_every: int = 0
    delay: float = 0.0
    window: float = 30.0

    def __post_init__(self) -> None:
        self.sink_log = self.env.work / f"{self.name}-sink.jsonl"
        self.campaign = None
        self.started = 0.0

    def begin(self) -> None:
        self.env.start_sink(self.sink_log, drop_every=self.drop_every, delay=self.delay)
        self.campaign = make_campaign(self.recipients, throttle=self.throttle)

    def start_campaign(self) -> None:
        from campaigns import services

        assert self.campaign is not None
        services.campaign_start(campaign=self.campaign, actor=None)
        self.started = time.monotonic()

    def received(self) -> int:
        if not self.sink_log.exists():
            return 0
        with open(self.sink_log, "rb") as handle:
            return sum(1 for _ in handle)

    def last_receipt(self) -> float:
        """Wall-clock time of the newest receipt (0 when none)."""
        if not self.sink_log.exists():
            return 0.0
        lines = self.sink_log.read_bytes().splitlines()
        return float(json.loads(lines[-1])["at"]) if lines else 0.0

    def wait_until(self, predicate: Callable[[], bool], deadline: float) -> bool:
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.2)
        return False

    def settle(self, deadline: float) -> None:
        """Wait until no message of the campaign is open, or the deadline passes."""
        assert self.campaign is not None
        campaign_id = self.campaign.pk
        self.wait_until(lambda: open_count(campaign_id) == 0, deadline)

    def finish(self, extra: dict[str, str] | None = None) -> tuple[Tally, float | None]:
        assert self.campaign is not None
        elapsed = time.monotonic() - self.started
        self.env.stop_all()  # workers, beat and sink: nothing changes while we count
        states = message_states(self.campaign.pk)
        tally = compare_delivery(states, read_receipts(self.sink_log, decode_message_id))
        ratio = None
        if self.throttle:
            receipts = read_receipts(self.sink_log, lambda mid: 0)
            ratio = max_rate_ratio(
                [r.at for r in receipts], per_minute=self.throttle, window=self.window
            )
        tally.extra.update(extra or {})
        tally.extra["elapsed_s"] = f"{elapsed:.0f}"
        tally.extra["load"] = load()
        return tally, ratio


# After a fault: how long recovery may take before the next fault comes anyway, and how
# long the campaign then has to finish (the bound is 30 s; restarting a worker
# costs a few seconds more).
RECOVERY_WAIT_S = 60
SETTLE_AFTER_S = 60


def repeated_faults(
    run: Run, count: int, fault: Callable[[int], None], label: str, cap_s: float
) -> dict[str, str]:
    """Inject ``fault`` ``count`` times, evenly over the campaign's progress; after each,
    wait for the next delivery (the recovery time). Then wait for the campaign to end:
    at most ``SETTLE_AFTER_S`` after the last fault and ``cap_s`` after the start."""
    cap = run.started + cap_s
    recoveries: list[str] = []
    for number in range(1, count + 1):
        threshold = run.recipients * number // (count + 1)
        if not run.wait_until(lambda t=threshold: run.received() >= t, cap):
            break
        log(f"{run.name}: {label} {number} at {run.received()} received")
        fault(number)
        at = time.time()
        # A message already on the wire at the fault may still be logged by the sink a
        # few milliseconds later: recovery is a delivery after a margin.
        limit = min(cap, time.monotonic() + RECOVERY_WAIT_S)
        if run.wait_until(lambda k=at: run.last_receipt() > k + MARGIN, limit):
            recoveries.append(f"{run.last_receipt() - at:.1f}")
        else:
            recoveries.append(f">{time.time() - at:.0f}")
    run.settle(min(cap, time.monotonic() + SETTLE_AFTER_S))
    return {"faults": str(len(recoveries)), "recovery_s": ",".join(recoveries) or "n/a"}


def scenario_worker_sigkill(env: Env) -> tuple[Tally, float | None]:
    """Product defaults (leases, recovery): kill the whole worker, pool included, and
    restart it at once, as a supervisor would."""
    run = Run(env, "worker_sigkill", 400 if env.quick else 1000, delay=0.01)
    run.begin()
    env.start_beat()
    workers = [env.start_worker("w-kill-0", 2)]
    time.sleep(4)
    run.start_campaign()

    def kill(number: int) -> None:
        kill_group(workers[-1])
        workers[-1].wait()
        workers.append(env.start_worker(f"w-kill-{number}", 2))

    extra = repeated_faults(run, 2, kill, "SIGKILL worker", 100 if env.quick else 140)
    return run.finish(extra)


def held_rows(campaign_id: int, *, expired: bool = False) -> int:
    """Rows of the campaign claimed by a batch and still waiting (``queued``)."""
    from django.utils import timezone

    from campaigns.models import Message

    rows = Message.objects.filter(
        campaign_id=campaign_id, claim_token__isnull=False, state="queued"
    )
    if expired:
        rows = rows.filter(lease_until__lt=timezone.now())
    count = db_retry(rows.count)
    assert isinstance(count, int)
    return count


def scenario_lease_expiry(env: Env) -> tuple[Tally, float | None]:
    """One worker with 3-s leases is frozen (SIGSTOP) mid-batch until its lease expires;
    then a second sender (this process, running the same ``delivery.send_batch`` as a
    worker) reclaims a few of its rows — fewer than a chunk, as a reclaim by another
    worker can — and sends them; then the frozen worker continues (SIGCONT)."""
    from campaigns.sending import delivery

    lease = 3
    run = Run(env, "lease_expiry", 500 if env.quick else 1500, delay=0.02)
    common = {"LUXMAIL_SEND_LEASE_SECONDS": str(lease), "LUXMAIL_SEND_BATCH": "100"}
    run.begin()
    env.start_beat(**common)
    frozen = env.start_worker("w-lease", 1, **common)
    time.sleep(4)
    run.start_campaign()
    assert run.campaign is not None
    campaign_id = run.campaign.pk
    deadline = run.started + (60 if env.quick else 100)
    stops = 3 if env.quick else 6
    done = reclaimed = 0
    for number in range(1, stops + 1):
        if not run.wait_until(lambda: held_rows(campaign_id) >= 30, deadline):
            break
        kill_group(frozen, signal.SIGSTOP)
        try:
            run.wait_until(
                lambda: held_rows(campaign_id, expired=True) >= 30,
                time.monotonic() + lease + 5,
            )
            report = delivery.send_batch(campaign_id=campaign_id, limit=7)
            reclaimed += report.claimed
            log(f"lease_expiry: stop {number}: reclaimed and sent {report.claimed} rows")
        finally:
            kill_group(frozen, signal.SIGCONT)
        done += 1
        progress = run.received() + 40  # the frozen worker goes on before the next stop
        run.wait_until(lambda p=progress: run.received() >= p, deadline)
    run.settle(deadline)
    return run.finish({"stops": str(done), "reclaimed": str(reclaimed), "lease_s": str(lease)})


def scenario_smtp_drop_after_data(env: Env) -> tuple[Tally, float | None]:
    run = Run(env, "smtp_drop_after_data", 300 if env.quick else 1000, drop_every=50)
    run.begin()
    env.start_beat()
    env.start_worker("w-drop", 2)
    time.sleep(4)
    run.start_campaign()
    run.settle(run.started + (60 if env.quick else 100))
    dropped = sum(1 for r in read_receipts(run.sink_log, lambda m: 0) if r.outcome == DROPPED)
    return run.finish({"dropped_by_sink": str(dropped)})


def pg_restart() -> None:
    versions = sorted(
        (p.name for p in Path("/etc/postgresql").iterdir() if p.name.isdigit()), key=int
    )
    if not versions:
        raise SystemExit("postgres_restart needs pg_ctlcluster (no /etc/postgresql/<version>)")
    subprocess.run(["pg_ctlcluster", versions[-1], "main", "restart"], check=True)


def scenario_postgres_restart(env: Env) -> tuple[Tally, float | None]:
    run = Run(env, "postgres_restart", 400 if env.quick else 1000, delay=0.01)
    run.begin()
    env.start_beat()
    env.start_worker("w-pg", 2)
    time.sleep(4)
    run.start_campaign()
    extra = repeated_faults(
        run,
        1 if env.quick else 2,
        lambda n: pg_restart(),
        "restart PostgreSQL",
        100 if env.quick else 140,
    )
    return run.finish(extra)


def scenario_pause_resume_throttle(env: Env) -> tuple[Tally, float | None]:
    """10 pause/resume toggles under a 1,200/min throttle (20 messages per batch, so the
    pacing itself is smooth enough to stay within 10 % over 30-s windows)."""
    from campaigns import services
    from campaigns.models import Campaign

    throttle = 1200
    run = Run(
        env,
        "pause_resume_throttle",
        500 if env.quick else 1000,
        throttle=throttle,
        window=20.0 if env.quick else 30.0,
    )
    overrides = {"LUXMAIL_SEND_BATCH": "20", "LUXMAIL_SEND_CHAINS": "2"}
    run.begin()
    env.start_beat(**overrides)
    env.start_worker("w-throttle", 2, **overrides)
    time.sleep(4)
    run.start_campaign()
    assert run.campaign is not None
    time.sleep(2)
    for _ in range(10):
        campaign = Campaign.objects.get(pk=run.campaign.pk)
        if campaign.status != "sending":
            break
        services.campaign_pause(campaign=campaign, actor=None)
        time.sleep(0.5)
        services.campaign_resume(campaign=campaign, actor=None)
        time.sleep(1.0)
    run.settle(run.started + (60 if env.quick else 100))
    return run.finish({"throttle_per_min": str(throttle), "window_s": f"{run.window:.0f}"})


# --- tracking scenario ----------------------------------------------------------------------------

TRACK_HTML = (
    "<html><body><p>Hello</p>"
    '<p><a href="https://clinic.example/book">Book</a> '
    '<a href="https://clinic.example/flu">Flu</a></p></body></html>'
)
HIT_AGENT = "Mozilla/5.0 (X11; Linux x86_64) faults-hit-{}"
_HIT = re.compile(r"faults-hit-(\d+)$")


def tracking_paths(messages: int) -> tuple[int, list[str]]:
    """A sent campaign of ``messages`` messages; alternating open and click paths."""
    from django.utils import timezone

    from campaigns.models import Campaign, CampaignStatus, Message
    from reporting import tracking

    now = timezone.now()
    campaign = Campaign.objects.create(
        name=f"faults-track-{time.time_ns()}",
        secure_policy="tls_or_better",
        status=CampaignStatus.SENT,
        frozen_subject="Hello",
        frozen_html=TRACK_HTML,
        started_at=now,
        finished_at=now,
    )
    sent = now - timezone.timedelta(hours=1)
    Message.objects.bulk_create(
        [
            Message(
                campaign=campaign, state="sent", channel="tls", sending_at=sent, finished_at=sent
            )
            for _ in range(messages)
        ]
    )
    tracking.forget_plans()
    tracking.plan_for_sending(campaign.pk)
    paths = []
    for n, message_id in enumerate(
        Message.objects.filter(campaign=campaign).order_by("id").values_list("id", flat=True)
    ):
        url = (
            tracking.open_url(message_id=message_id, campaign_id=campaign.pk)
            if n % 2 == 0
            else tracking.click_url(message_id=message_id, campaign_id=campaign.pk, link_index=1)
        )
        paths.append("/" + url.split("/", 3)[3])
    return campaign.pk, paths


def scenario_redis_sigkill_tracking(env: Env, redis: Redis) -> tuple[Tally, float | None]:
    from reporting import buffer, ingest
    from reporting.models import Event

    hits = 1500 if env.quick else 6000
    threads = 8
    port = free_port()
    campaign_id, paths = tracking_paths(500)
    env.spawn(
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "luxmail.wsgi:application",
            "--workers",
            "2",
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
        ],
        "gunicorn",
        env.base_env(),
    )
    wait_port(port, 30)
    accepted: list[int] = []
    failed = [0]
    next_hit = [0]
    lock = threading.Lock()

    def client() -> None:
        while True:
            with lock:
                hit = next_hit[0]
                if hit >= hits:
                    return
                next_hit[0] += 1
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}{paths[hit % len(paths)]}",
                headers={"User-Agent": HIT_AGENT.format(hit)},
            )
            status = 0
            try:
                with _no_redirect().open(request, timeout=10) as response:
                    status = response.status
            except urllib.error.HTTPError as error:
                status = error.code
            except OSError:
                status = 0
            with lock:
                if status in (200, 302):
                    accepted.append(hit)
                else:
                    failed[0] += 1

    started = time.monotonic()
    workers = [threading.Thread(target=client) for _ in range(threads)]
    for thread in workers:
        thread.start()
    kills = 0
    outage: list[str] = []
    for fraction in (0.3, 0.65):
        while next_hit[0] < hits * fraction and any(t.is_alive() for t in workers):
            time.sleep(0.02)
        redis.kill()
        kills += 1
        log(f"redis_sigkill_tracking: SIGKILL Redis at hit {next_hit[0]}")
        time.sleep(1.0)
        outage.append(ingest_while_down())
        redis.start()
    for thread in workers:
        thread.join()
    elapsed = time.monotonic() - started
    env.stop_all()  # gunicorn: its spool files (if any) are complete now
    buffer.reset()
    for _ in range(20):
        report = ingest.ingest()
        if report.read == 0 and not report.busy:
            break
    agents = Event.objects.filter(campaign_id=campaign_id).values_list("user_agent", flat=True)
    ingested = []
    stray = 0
    for agent in agents:
        match = _HIT.search(agent)
        if match:
            ingested.append(int(match.group(1)))
        else:
            stray += 1
    tally = compare_tracking(accepted, failed[0], ingested, stray=stray)
    tally.extra.update(
        {
            "requests": str(hits),
            "redis_kills": str(kills),
            "ingest_while_redis_down": ",".join(outage),
            "appendfsync": redis.appendfsync,
            "req_per_s": f"{hits / elapsed:.0f}",
            "elapsed_s": f"{elapsed:.0f}",
            "load": load(),
        }
    )
    return tally, None


def ingest_while_down() -> str:
    """Run the ingester while Redis is dead: the entries the web processes wrote to the
    database meanwhile must still be stored (``<stored>/<waiting in the table>``)."""
    from reporting import buffer, ingest
    from reporting.models import PendingEvent

    buffer.reset()
    waiting = PendingEvent.objects.count()
    try:
        report = ingest.ingest_batch()
    except Exception as error:  # what it raises is the finding
        return f"error:{error.__class__.__name__}"
    return f"{report.stored}/{waiting}"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None


def _no_redirect() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(_NoRedirect)


# --- main ---------------------------------------------------------------------------------------

SCENARIOS = (
    "worker_sigkill",
    "lease_expiry",
    "smtp_drop_after_data",
    "redis_sigkill_tracking",
    "postgres_restart",
    "pause_resume_throttle",
)


def drop_database(name: str) -> None:
    import psycopg

    from bench.common import PG_URL

    with psycopg.connect(PG_URL.format(name="postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_scenario(name: str, env: Env) -> tuple[Tally, float | None]:
    from reporting import buffer

    redis = Redis(env.redis_port, env.work / name, env.appendfsync)
    redis.start()
    buffer.reset()
    try:
        if name == "redis_sigkill_tracking":
            return scenario_redis_sigkill_tracking(env, redis)
        scenario = globals()[f"scenario_{name}"]
        return scenario(env)
    finally:
        env.stop_all()
        redis.stop()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scenario", action="append", choices=SCENARIOS, help="repeatable")
    parser.add_argument("--quick", action="store_true", help="fewer recipients, shorter runs")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument(
        "--database", default=DATABASE, help="its own database, created and dropped (%(default)s)"
    )
    parser.add_argument("--keep-db", action="store_true", help="keep the database at the end")
    parser.add_argument(
        "--keep-work", action="store_true", help="keep the work directory (process logs)"
    )
    parser.add_argument(
        "--redis-appendfsync",
        default="always",
        choices=("always", "everysec", "no", "off"),
        help="the throwaway Redis servers' appendfsync (off: no append-only file at all)",
    )
    parser.add_argument("--serve-sink", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--sink-log", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--drop-every", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--delay", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.list:
        print("\n".join(SCENARIOS))
        return 0
    if args.serve_sink:
        asyncio.run(_serve_sink(args.port, args.sink_log, args.drop_every, args.delay))
        return 0

    work = Path(tempfile.mkdtemp(prefix="luxmail-faults-"))
    redis_port = free_port()
    url = f"redis://127.0.0.1:{redis_port}/0"
    sink_port = free_port()
    os.environ.update(
        {
            "LUXMAIL_SMTP_HOST": "127.0.0.1",
            "LUXMAIL_SMTP_PORT": str(sink_port),
            "LUXMAIL_SMTP_SECURITY": "none",
            "LUXMAIL_REDIS_URL": url,
            "CELERY_BROKER_URL": url,
            "LUXMAIL_CELERY_EAGER": "0",
            "LUXMAIL_VAR_DIR": str(work / "var"),
            "LUXMAIL_LOG_LEVEL": "WARNING",
        }
    )
    from bench.common import PG_URL, setup_django

    if not args.database.startswith("luxmail_faults"):
        raise SystemExit("--database must start with luxmail_faults: it is dropped at the end")
    drop_database(args.database)
    print(f"faults: work directory {work}; database {args.database}; load {load()}", flush=True)
    setup_django(args.database)
    from luxmail.celery import app

    app.conf.task_always_eager = False
    env = Env(
        work=work,
        redis_port=redis_port,
        sink_port=sink_port,
        database_url=PG_URL.format(name=args.database),
        appendfsync=args.redis_appendfsync,
        quick=args.quick,
    )
    totals = Tally()
    try:
        for name in args.scenario or SCENARIOS:
            log(f"{name}: starting")
            try:
                tally, ratio = run_scenario(name, env)
            except Exception as error:  # one broken scenario must not hide the others
                print(f"scenario={name} error={error.__class__.__name__}: {error}", flush=True)
                totals.lost += 1
                continue
            print(tally.line(name, ratio), flush=True)
            totals.duplicates += tally.duplicates
            totals.lost += tally.lost
    finally:
        env.stop_all()
        from django.db import connections

        connections.close_all()
        if not args.keep_db:
            drop_database(args.database)
        if not args.keep_work:
            shutil.rmtree(work, ignore_errors=True)
    print(f"faults: duplicates={totals.duplicates} lost={totals.lost}", flush=True)
    return 1 if totals.duplicates or totals.lost else 0


if __name__ == "__main__":
    sys.exit(main())
