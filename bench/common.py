"""Shared set-up for benchmark scripts: a dedicated PostgreSQL database, never dev or test.

Usage at the top of a script, before importing any model::

    from bench.common import setup_django
    setup_django("luxmail_bench")

The database is created when missing and migrated; the test-mode keys are used, so a
benchmark never touches a real key ring.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_URL = "postgres://postgres@127.0.0.1:5432/{name}"
FORBIDDEN = {"luxmail", "postgres", "template0", "template1"}


def setup_django(database: str = "luxmail_bench", *, migrate: bool = True) -> None:
    if database in FORBIDDEN or database.startswith("test_"):
        raise SystemExit(f"Refusing to benchmark in database {database!r}: use a bench database.")
    sys.path.insert(0, str(ROOT))
    os.environ["LUXMAIL_ENV"] = "test"
    os.environ["DATABASE_URL"] = PG_URL.format(name=database)
    os.environ["DJANGO_SETTINGS_MODULE"] = "luxmail.settings"
    create_database(database)
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)


def create_database(name: str) -> None:
    """The bench database ``name``, created when it does not exist yet."""
    import psycopg

    with psycopg.connect(PG_URL.format(name="postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def system_load() -> str:
    """The 1/5/15-minute load averages: the machine is shared, so say what was running."""
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "unknown"
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f} (1/5/15 min, {os.cpu_count()} CPUs)"


def median_seconds(func: Callable[[], object], *, runs: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        func()
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        func()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)
