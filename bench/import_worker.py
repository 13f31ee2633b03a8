"""Contact import end to end through a real Celery worker: upload, preview, confirm.

    .venv/bin/python bench/import_worker.py                 # 100,000 rows (baseline 5,000)
    .venv/bin/python bench/import_worker.py --rows 250000 --baseline 10000

What the suite's ``test_a_real_worker_imports_many_rows`` checks at 12,000 rows, at the
volume a clinic uploads (this was a 100,000-row test in the suite, too slow for it). A
throwaway redis-server is the broker; the worker and this script share the dedicated
PostgreSQL database ``luxmail_bench_import_worker`` (emptied first). A baseline import
of ``--baseline`` rows runs first in the same process and machine state, and the big
import's rows/s is given as a ratio to it: near 1.0 means the import scales linearly.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, setup_django, system_load

TRUNCATE = (
    "TRUNCATE contacts_contacttokenset, contacts_contactprofile, contacts_consent, "
    "contacts_listmembership, contacts_contact, contacts_importjob RESTART IDENTITY CASCADE"
)


def rows_csv(count: int) -> bytes:
    """The same shape as the suite's import rows (contacts/tests/test_import.py)."""
    return (
        "email,first_name,birth_date,conditions,zip_code,marketing_consent\n"
        + "".join(
            f"patient{i}@example.org,P{i},19{50 + i % 40}-0{1 + i % 9}-1{i % 9},"
            f"E11.{i % 10},0{2100 + i % 90},yes\n"
            for i in range(count)
        )
    ).encode()


def wait(predicate, seconds: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}")


def import_once(actor, count: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """(preview seconds, import seconds) for ``count`` fresh rows."""
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.db import connection

    from contacts.imports import services as imports
    from contacts.models import Contact, ImportJob, ImportJobStatus

    with connection.cursor() as cursor:
        cursor.execute(TRUNCATE)
    job = imports.import_job_create(
        uploaded=SimpleUploadedFile("patients.csv", rows_csv(count)), actor=actor
    )
    start = time.perf_counter()
    job = wait(  # the worker's reading task: the upload itself parses nothing
        lambda: ImportJob.objects.filter(pk=job.pk).exclude(status=ImportJobStatus.READING).first(),
        3600,
        "the reading task",
    )
    imports.import_job_map(job=job, mapping=job.mapping, actor=actor)
    job = wait(
        lambda: ImportJob.objects.filter(
            pk=job.pk, status__in=[*imports.FINISHED, ImportJobStatus.PREVIEWED]
        ).first(),
        3600,
        "the preview",
    )
    previewed = time.perf_counter()
    if job.status != ImportJobStatus.PREVIEWED or job.preview["create"] != count:
        raise SystemExit(f"preview failed: {job.status} {job.failure}")
    imports.import_job_confirm(job=job, actor=actor)
    job = wait(
        lambda: ImportJob.objects.filter(pk=job.pk, status__in=imports.FINISHED).first(),
        3600,
        "the import",
    )
    done = time.perf_counter()
    if job.status != ImportJobStatus.SUCCEEDED or Contact.objects.count() != count:
        raise SystemExit(f"import failed: {job.status} {job.failure}")
    return previewed - start, done - previewed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--baseline", type=int, default=5_000)
    parser.add_argument("--batch", type=int, default=2_000)
    parser.add_argument("--database", default="luxmail_bench_import_worker")
    args = parser.parse_args()

    from luxmail.testing import RedisServer

    work = Path(tempfile.mkdtemp(prefix="luxmail-bench-import-"))
    redis = RedisServer(work / "redis").start()
    os.environ.update(
        LUXMAIL_REDIS_URL=redis.url(0),
        CELERY_BROKER_URL=redis.url(0),
        LUXMAIL_CELERY_EAGER="0",
        LUXMAIL_IMPORT_DIR=str(work / "imports"),
        LUXMAIL_IMPORT_BATCH=str(args.batch),
        LUXMAIL_VAR_DIR=str(work / "var"),
    )
    setup_django(args.database)
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from luxmail import roles

    roles.sync_roles()
    actor, _ = get_user_model().objects.get_or_create(username="bench-importer")
    actor.groups.add(Group.objects.get(name=roles.PHI_MARKETER))
    worker = subprocess.Popen(
        [
            *(sys.executable, "-m", "celery", "-A", "luxmail", "worker", "--pool=solo"),
            *("--loglevel=WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat"),
        ],
        cwd=ROOT,
        env={**os.environ},
        stdout=subprocess.DEVNULL,
    )
    try:
        import_once(actor, 10)  # the worker has started and warmed up: not measured
        print(f"load before: {system_load()}")
        base_preview, base_import = import_once(actor, args.baseline)
        base_rate = args.baseline / base_import
        print(
            f"baseline {args.baseline:,} rows: preview {base_preview:.1f} s, "
            f"import {base_import:.1f} s = {base_rate:,.0f} rows/s"
        )
        preview, imported = import_once(actor, args.rows)
        rate = args.rows / imported
        print(
            f"{args.rows:,} rows: preview {preview:.1f} s, import {imported:.1f} s = "
            f"{rate:,.0f} rows/s ({rate / base_rate:.2f}x the baseline's rows/s; "
            f"preview {args.rows / preview:,.0f} rows/s, "
            f"{(args.rows / preview) / (args.baseline / base_preview):.2f}x the baseline's)"
        )
        print(f"load after: {system_load()}")
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        redis.stop()


if __name__ == "__main__":
    main()
