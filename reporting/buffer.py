"""Durable buffer between the tracking endpoints and the event ingester.

The request path appends the raw facts of one open or click and returns; the
ingester (``reporting.ingest``) classifies and stores them later. Where an entry
goes, in order:

1. **Redis stream** ``luxmail:tracking:events`` (``XADD``, ~0.1 ms). Redis answers
   only after the entry is in its append-only file and fsynced: ``appendonly yes`` +
   ``appendfsync always``, verified at start-up by :func:`durability_problem`
   (``LUXMAIL_TRACKING_DURABILITY``, docs/operations.md "Tracking guarantees").
2. **Write-ahead table** ``reporting_pendingevent`` (one autocommitted ``INSERT``) when
   Redis is not configured (``make run``), does not answer, or
   ``LUXMAIL_TRACKING_DURABILITY=postgres``.
3. **Spool file** under ``var/tracking-spool/`` (appended and fsynced) when neither
   answers. The process that spooled moves the lines to 1 or 2 once one of them works
   again, and ``manage.py ingest_tracking_events`` on that host reads them directly.

After a Redis failure the endpoint skips Redis for :data:`REDIS_RETRY_SECONDS`, so a
dead Redis costs one timeout, not one per request. An entry holds the client address
until it is ingested; nothing in it identifies the person.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connection, transaction
from django.db import connection as thread_connection
from redis.connection import parse_url

from luxmail import conf
from reporting.models import PendingEvent

logger = logging.getLogger(__name__)

STREAM = "luxmail:tracking:events"
REDIS_RETRY_SECONDS = 2.0
_SOCKET_TIMEOUT = 0.5

try:  # the client ships with Celery's Redis extra
    import redis

    REDIS_ERRORS: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
except ImportError:  # pragma: no cover - a declared dependency
    redis = None  # type: ignore[assignment]
    REDIS_ERRORS = (OSError,)

_client: Any = None
_client_url: str | None = None
_redis_down_until = 0.0
_spooled = False
_lock = threading.Lock()


def redis_client() -> Any:
    """A per-process Redis client for ``LUXMAIL_REDIS_URL`` (None when not configured)."""
    global _client, _client_url
    url = conf.redis_url()
    if not url or redis is None:
        return None
    if _client is None or _client_url != url:
        with _lock:
            if _client is None or _client_url != url:
                _client = redis.Redis.from_url(
                    url,
                    socket_timeout=_SOCKET_TIMEOUT,
                    socket_connect_timeout=_SOCKET_TIMEOUT,
                    health_check_interval=30,
                )
                _client_url = url
    return _client


def redis_healthy() -> bool:
    return time.monotonic() >= _redis_down_until


def mark_redis_down() -> None:
    global _redis_down_until
    _redis_down_until = time.monotonic() + REDIS_RETRY_SECONDS


def reset() -> None:
    """Forget the clients and the failure window (tests, settings changes)."""
    global _client, _client_url, _redis_down_until, _writer, _writer_url
    with _lock:
        _client = None
        _client_url = None
        _redis_down_until = 0.0
        if _writer is not None:
            _writer.close()
        _writer = None
        _writer_url = None


def encode(entry: dict[str, Any]) -> str:
    return json.dumps(entry, separators=(",", ":"), ensure_ascii=False)


# --- appending (the request path) ----------------------------------------------------------


class _StreamWriter:
    """``XADD`` over one persistent connection per thread, in raw RESP.

    The request path sends one command and reads one reply: redis-py spends about
    35 µs of Python per command on pooling and parsing around a ~10 µs round trip, a
    third of a tracking request's own work. TCP (``redis://``) only; ``rediss://`` and
    Unix sockets use redis-py. Any problem raises ``OSError`` and drops the connection.
    """

    def __init__(self, options: dict[str, Any]):
        self.options = options
        self.local = threading.local()

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(
            (self.options["host"], int(self.options.get("port") or 6379)),
            timeout=_SOCKET_TIMEOUT,
        )
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        setup: list[list[bytes]] = []
        if self.options.get("password"):
            credentials = [str(self.options["password"]).encode()]
            if self.options.get("username"):
                credentials.insert(0, str(self.options["username"]).encode())
            setup.append([b"AUTH", *credentials])
        if self.options.get("db"):
            setup.append([b"SELECT", str(self.options["db"]).encode()])
        try:
            for command in setup:
                sock.sendall(_resp(command))
                reply = _read_reply(sock)
                if not reply.startswith(b"+OK"):
                    raise OSError("Redis refused the connection set-up")
        except OSError:
            sock.close()
            raise
        self.local.sock = sock
        return sock

    def xadd(self, stream: bytes, data: bytes) -> None:
        sock = getattr(self.local, "sock", None) or self._connect()
        try:
            sock.sendall(_resp([b"XADD", stream, b"*", b"e", data]))
            reply = _read_reply(sock)
        except OSError:
            self.close()
            raise
        if not reply.startswith(b"$"):
            self.close()
            raise OSError("Redis did not take the entry")

    def close(self) -> None:
        sock = getattr(self.local, "sock", None)
        self.local.sock = None
        if sock is not None:
            sock.close()


def _resp(parts: list[bytes]) -> bytes:
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


def _read_reply(sock: socket.socket) -> bytes:
    """One simple-string, error or bulk-string reply."""
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(256)
        if not chunk:
            raise OSError("Redis closed the connection")
        data += chunk
    if data.startswith(b"$"):
        header, _, rest = data.partition(b"\r\n")
        length = int(header[1:])
        while length >= 0 and len(rest) < length + 2:
            chunk = sock.recv(256)
            if not chunk:
                raise OSError("Redis closed the connection")
            rest += chunk
    return data


_writer: _StreamWriter | None = None
_writer_url: str | None = None


def _stream_writer() -> _StreamWriter | None:
    global _writer, _writer_url
    url = conf.redis_url()
    if not url or redis is None or not url.startswith("redis://"):
        return None
    if _writer is None or _writer_url != url:
        _writer, _writer_url = _StreamWriter(parse_url(url)), url
    return _writer


# --- durability: what the configured store promises -------------------------------------

DURABILITY_REDIS_FSYNC = "redis-fsync"
DURABILITY_REDIS_TRUSTED = "redis-trusted"
DURABILITY_POSTGRES = "postgres"
DURABILITY_MODES = (DURABILITY_REDIS_FSYNC, DURABILITY_REDIS_TRUSTED, DURABILITY_POSTGRES)
_ESCAPE = (
    "Fix the Redis configuration, or set LUXMAIL_TRACKING_DURABILITY=postgres (hits are "
    "written to PostgreSQL instead), or LUXMAIL_TRACKING_DURABILITY=redis-trusted if you "
    "have made sure yourself that this Redis fsyncs every write (docs/operations.md, "
    '"Tracking guarantees").'
)


def durability_mode() -> str:
    return conf.tracking_durability()


@dataclass(frozen=True)
class DurabilityProblem:
    """Why an accepted hit could be lost; ``blocking``: production must not start."""

    message: str
    blocking: bool = True


def durability_problem() -> DurabilityProblem | None:
    """Check that the store tracking hits go to keeps them across a crash (start-up).

    ``redis-fsync`` asks Redis ``CONFIG GET appendonly/appendfsync``: anything but
    ``yes``/``always`` can lose acknowledged entries when Redis dies (``everysec`` up to a
    second of them, no persistence all of them). A Redis that does not answer now is
    not blocking (hits go to PostgreSQL meanwhile) but is reported.
    """
    mode = durability_mode()
    if mode not in DURABILITY_MODES:
        return DurabilityProblem(
            f"LUXMAIL_TRACKING_DURABILITY={mode!r} is not one of {', '.join(DURABILITY_MODES)}."
        )
    problem = _postgres_problem()
    if problem is not None or mode != DURABILITY_REDIS_FSYNC:
        return problem
    url = conf.redis_url()
    if not url or redis is None:
        return None  # no Redis: every hit goes to the write-ahead table
    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    where = _safe_url(url)
    try:
        appendonly = client.config_get("appendonly").get("appendonly")
        appendfsync = client.config_get("appendfsync").get("appendfsync")
    except redis.ResponseError as error:
        return DurabilityProblem(
            f"Tracking durability cannot be verified: Redis at {where} refuses CONFIG GET "
            f"({str(error)[:80]}); CONFIG is disabled or renamed. {_ESCAPE}"
        )
    except REDIS_ERRORS as error:
        return DurabilityProblem(
            f"Tracking durability not verified: Redis at {where} does not answer "
            f"({type(error).__name__}); tracking hits go to PostgreSQL until it does. "
            "Check its persistence (appendonly yes, appendfsync always) when it is back.",
            blocking=False,
        )
    finally:
        client.close()
    if (appendonly, appendfsync) != ("yes", "always"):
        return DurabilityProblem(
            f"Redis at {where} runs appendonly {appendonly}, appendfsync {appendfsync}: "
            "tracking hits it acknowledged are lost if it dies (LuxMail needs appendonly "
            f"yes and appendfsync always). {_ESCAPE}"
        )
    return None


def _postgres_problem() -> DurabilityProblem | None:
    """The write-ahead table is durable only with fsync and synchronous_commit on."""
    if connection.vendor != "postgresql":
        return None
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('fsync'), current_setting('synchronous_commit')")
            fsync, synchronous_commit = cursor.fetchone()
    except DatabaseError:
        return None  # the database's own checks report an unreachable database
    if fsync != "on" or synchronous_commit == "off":
        return DurabilityProblem(
            f"PostgreSQL runs fsync={fsync}, synchronous_commit={synchronous_commit}: "
            "tracking hits written to the write-ahead table can be lost in a crash. Turn "
            "both on (synchronous_commit may be local, remote_write, on or remote_apply)."
        )
    return None


def _safe_url(url: str) -> str:

    options = parse_url(url)
    return f"{options.get('host', '?')}:{options.get('port', 6379)}/{options.get('db', 0)}"


def enforce_durability() -> None:
    """Start-up of a web process: refuse (production) or warn loudly (dev) when tracking
    hits could be lost. Called from ``luxmail.wsgi``; ``manage.py check`` runs the same."""
    problem = durability_problem()
    if not connection.in_atomic_block:
        connection.close()  # opened for the check: never shared with forked workers
    if problem is None:
        return
    if problem.blocking and conf.production():
        raise ImproperlyConfigured(problem.message)
    logger.warning("TRACKING EVENTS CAN BE LOST: %s", problem.message)


def _xadd(data: str) -> bool:
    if durability_mode() == DURABILITY_POSTGRES or not redis_healthy():
        return False
    writer = _stream_writer()
    try:
        if writer is not None:
            writer.xadd(STREAM.encode(), data.encode())
        else:
            client = redis_client()
            if client is None:
                return False
            client.xadd(STREAM, {"e": data})
    except REDIS_ERRORS:
        mark_redis_down()
        logger.warning("Tracking buffer: Redis unavailable; using the write-ahead table")
        return False
    return True


def _write_ahead(data: str) -> bool:

    outermost = not connection.in_atomic_block
    try:
        with transaction.atomic():
            if outermost and connection.vendor == "postgresql":
                # A locked or overloaded database must not hold the recipient's request:
                # give up quickly and spool instead.
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SET LOCAL lock_timeout = '500ms'; SET LOCAL statement_timeout = '2s'"
                    )
            PendingEvent.objects.create(payload=data)
    except DatabaseError:
        logger.warning("Tracking buffer: database unavailable; spooling to disk")
        if outermost:
            connection.close_if_unusable_or_obsolete()
        return False
    return True


def spool_dir() -> Path:
    return Path(settings.VAR_DIR) / "tracking-spool"


def _locked_append(path: Path, payload: bytes) -> None:
    """Append under an exclusive lock, to the file that is at ``path`` now.

    The ingester renames a spool file before reading it and locks it while it does:
    a writer that opened the old name re-opens, so no line lands in a drained file.
    """
    while True:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                current = os.stat(path)
            except FileNotFoundError:
                current = None
            if current is not None and current.st_ino == os.fstat(fd).st_ino:
                os.write(fd, payload)
                os.fsync(fd)
                return
        finally:
            os.close(fd)


def _spool(data: str) -> None:
    global _spooled
    directory = spool_dir()
    directory.mkdir(parents=True, exist_ok=True)
    _locked_append(directory / f"{os.getpid()}.jsonl", (data.replace("\n", " ") + "\n").encode())
    _spooled = True


def claim_spool_file(path: Path) -> tuple[Path, list[str]] | None:
    """Rename a spool file out of the writers' way and read it (None if it vanished).

    The returned lines are ingested, then the file is deleted with :func:`release_spool_file`.
    """
    if ".draining-" in path.name:
        draining = path
    else:
        draining = path.with_name(f"{path.stem}.draining-{time.time_ns()}")
        try:
            path.rename(draining)
        except FileNotFoundError:
            return None
    fd = os.open(draining, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # wait for a write in flight
        with os.fdopen(os.dup(fd), encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
    finally:
        os.close(fd)
    return draining, lines


def release_spool_file(path: Path) -> None:
    path.unlink(missing_ok=True)


def append(entry: dict[str, Any]) -> str:
    """Store one raw event durably; returns where it went (``redis``, ``table``, ``spool``).

    Never raises for an unavailable store: the last resort is the local spool file.
    Each entry gets a random id (``i``): when Redis times out after taking an entry and
    the same entry also lands in the table, the ingester still stores it once.
    """
    entry.setdefault("i", secrets.token_hex(8))
    data = encode(entry)
    if _xadd(data):
        where = "redis"
    elif _write_ahead(data):
        where = "table"
    else:
        _spool(data)
        return "spool"
    if _spooled:
        _drain_spool_soon()
    return where


def _drain_spool_soon() -> None:
    global _spooled
    with _lock:
        if not _spooled:
            return
        _spooled = False
    threading.Thread(target=_drain_own_spool, name="tracking-spool-drain", daemon=True).start()


def _drain_own_spool() -> None:
    """Move this process's spooled lines back into Redis or the write-ahead table."""
    try:
        claimed = claim_spool_file(spool_dir() / f"{os.getpid()}.jsonl")
        if claimed is None:
            return
        path, lines = claimed
        for line in lines:
            if line.strip() and not (_xadd(line) or _write_ahead(line)):
                _spool(line)
        release_spool_file(path)
    finally:
        thread_connection.close()


# --- reading (the ingester) -----------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One buffered event: ``source_id`` is unique across all three buffers."""

    source_id: str
    data: str


def read_stream(limit: int) -> list[Entry]:
    """The oldest ``limit`` stream entries (left in place until :func:`ack_stream`)."""
    client = redis_client()
    if client is None:
        return []
    try:
        rows = client.xrange(STREAM, "-", "+", count=limit)
    except REDIS_ERRORS:
        logger.warning("Tracking ingest: Redis unavailable; stream entries wait")
        return []
    entries = []
    for entry_id, fields in rows:
        ident = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
        raw = fields.get(b"e", fields.get("e", b""))
        entries.append(Entry(f"r:{ident}", raw.decode() if isinstance(raw, bytes) else raw))
    return entries


def ack_stream(source_ids: list[str]) -> None:
    """Delete ingested entries from the stream (after the events are committed)."""
    ids = [source_id[2:] for source_id in source_ids if source_id.startswith("r:")]
    client = redis_client()
    if not ids or client is None:
        return
    try:
        for start in range(0, len(ids), 1000):
            client.xdel(STREAM, *ids[start : start + 1000])
    except REDIS_ERRORS:
        # They are read again next time and skipped as already stored (source_id).
        logger.warning("Tracking ingest: could not delete %s stream entries yet", len(ids))


def stream_length() -> int | None:
    client = redis_client()
    if client is None:
        return None
    try:
        return int(client.xlen(STREAM))
    except REDIS_ERRORS:
        return None


def spool_files() -> Iterator[Path]:
    directory = spool_dir()
    if not directory.is_dir():
        return iter(())
    return iter(sorted(p for p in directory.iterdir() if p.is_file()))
