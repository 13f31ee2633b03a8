"""Fixtures for reporting tests: a real local HTTP server that records requests."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from luxmail.testing import free_port


@dataclass
class Received:
    method: str
    path: str
    headers: Message
    body: bytes


@dataclass
class RecordingServer:
    """``requests`` holds what arrived; ``statuses`` queues the answers (then ``default``)."""

    url: str
    requests: list[Received] = field(default_factory=list)
    statuses: deque[int] = field(default_factory=deque)
    default_status: int = 200
    get_body: bytes = b""
    delay_seconds: float = 0.0

    def answer(self, *statuses: int) -> None:
        self.statuses.extend(statuses)


@pytest.fixture
def recording_server():
    port = free_port()
    server_state = RecordingServer(url=f"http://127.0.0.1:{port}")
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def _record(self, body: bytes) -> int:
            with lock:
                server_state.requests.append(
                    # The message object looks headers up case-insensitively, as HTTP says.
                    Received(self.command, self.path, self.headers, body)
                )
                return (
                    server_state.statuses.popleft()
                    if server_state.statuses
                    else server_state.default_status
                )

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            status = self._record(self.rfile.read(length))
            if server_state.delay_seconds:
                time.sleep(server_state.delay_seconds)
            payload = b'{"echo":"a receiver may say anything here"}'
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", "http://127.0.0.1:9/elsewhere")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self):
            status = self._record(b"")
            self.send_response(status)
            self.send_header("Content-Type", "text/csv")
            self.send_header("Content-Length", str(len(server_state.get_body)))
            self.end_headers()
            self.wfile.write(server_state.get_body)

        def log_message(self, format, *args):  # keep test output clean
            return

        def handle(self):
            try:
                super().handle()
            except (BrokenPipeError, ConnectionResetError):
                return  # the client gave up waiting (timeout tests)

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server_state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def celery_worker_process(transactional_db, settings):
    """A real ``celery worker`` subprocess, sharing the test database and Redis broker.

    Tasks sent by the test go through Redis to the worker (not eager), so this proves
    the task names, the broker path and the worker's database access. Each helper runs
    its tests on its own Redis database (``LUXMAIL_REDIS_URL``), so the default queue
    is private to this run; it is purged first.
    """
    import os
    import subprocess
    import sys
    from pathlib import Path

    from django.db import connection

    from luxmail.celery import app
    from luxmail.testing import redis_answers, require

    require(connection.vendor == "postgresql", "needs PostgreSQL shared with the worker")
    broker = settings.CELERY_BROKER_URL
    require(redis_answers(broker), "needs Redis as the Celery broker")
    require(broker.startswith("redis://"), "needs a Redis broker")
    app.control.purge()
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "luxmail.test_settings",
        "LUXMAIL_ENV": "test",
        "LUXMAIL_CELERY_EAGER": "0",
        "DATABASE_URL": url,
        "CELERY_BROKER_URL": broker,
        "LUXMAIL_REDIS_URL": settings.REDIS_URL or broker,
    }
    root = Path(__file__).resolve().parents[2]
    celery = Path(sys.executable).with_name("celery")
    process = subprocess.Popen(
        [
            str(celery),
            "-A",
            "luxmail",
            "worker",
            "--pool",
            "solo",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel",
            "WARNING",
        ],
        cwd=root,
        env=env,
    )
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = False
    try:
        yield process
    finally:
        app.conf.task_always_eager = previous
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture
def tracking_buffer(settings, tmp_path):
    """A clean tracking buffer: empty Redis stream (this run's Redis db), a private spool
    directory, and no cached link plans."""
    from reporting import buffer, tracking

    settings.VAR_DIR = tmp_path
    buffer.reset()
    tracking.forget_plans()
    client = buffer.redis_client()
    if client is not None:
        try:
            client.delete(buffer.STREAM)
            for key in client.scan_iter("luxmail:tracking:links:*"):
                client.delete(key)
        except buffer.REDIS_ERRORS:
            pass
    yield buffer
    buffer.reset()
    tracking.forget_plans()
