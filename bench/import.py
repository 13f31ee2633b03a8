"""Contact import throughput: ``contacts_bulk_upsert`` with encryption and tokens.

    .venv/bin/python bench/import.py                  # 20,000 rows in batches of 2,000
    .venv/bin/python bench/import.py --rows 50000 --batch 5000

Rows look like a CSV import (every value a string: dates, ``;``-separated ICD-10 codes,
ZIP codes) and go through the same service the importer, the API and the UI use:
validation, normalization, AES-GCM encryption of every PHI attribute, blind-index
tokens and the audit event, on PostgreSQL in the dedicated database
``luxmail_bench_import`` (emptied first). It prints rows/s for the first import
(inserts), for re-importing the same rows (the unchanged-row path: decrypt and
compare) and for re-importing them with changes (updates). Target (DESIGN.md §6): >= 3,000 rows/s.

    .venv/bin/python bench/import.py --readers        # file readers, hostile files too
    .venv/bin/python bench/import.py --job 1000000 --rows 20000 --baseline main

``--job ROWS`` runs the whole import job as a user does (upload, guessed mapping, dry-run
check, confirm, import) on generated CSVs, each job in a child process: first the file of
``--rows`` rows ``--repeat`` times, alternating with the code of git ``--baseline`` REF
(e.g. ``main``, unpacked with ``git archive``) on the same file, then a file of ROWS rows
(0: none) with this code. Each line gives check and import rows/s (target >= 5,000), the
child's CPU per row (PostgreSQL's CPU not included; on a loaded machine wall time mostly
measures the wait for a core), its peak RSS (``ru_maxrss`` from ``wait4``: Django, the
file reader and the batches included; target <= 256 MB) and the load; then the medians,
the ratio this/baseline, and the big file's RSS and rate as ratios to the small one's.
Tables are vacuumed and analyzed before each job (CI's PostgreSQL has no autovacuum).

    .venv/bin/python bench/import.py --job 0 --rows 20000 --baseline main --repeat 3
    .venv/bin/python bench/import.py --job 1000000 --rows 20000

``--readers`` needs no database: it times reading every hostile file of
``contacts/tests/hostile_files.py`` and a valid 100,000-row workbook with the old reader
(openpyxl read-only, the whole file in memory, as before issue 12) and the new one
(``contacts.imports.files``: zip checks, then a streaming defusedxml reader), each in its
own child process, and prints seconds, peak memory (``ru_maxrss`` of that child from
``wait4``), the time ratio, the outcome and the machine load. The old reader is killed
after ``--old-timeout`` seconds (default 60) or at 4 GiB of address space.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import setup_django, system_load

TRUNCATE = (
    "TRUNCATE contacts_contacttokenset, contacts_contactprofile, contacts_consent, "
    "contacts_listmembership, contacts_contact RESTART IDENTITY CASCADE"
)


def csv_rows(count: int, seed: int) -> list[dict[str, str]]:
    return list(iter_csv_rows(count, seed))


def iter_csv_rows(count: int, seed: int) -> Iterator[dict[str, str]]:
    from bench.segments import ZIP3_WEIGHTS, synthetic_profile

    rng = random.Random(seed)
    today = dt.date.today()
    zip5s = {z3: [f"{z3}{rng.randrange(100):02d}" for _ in range(30)] for z3 in ZIP3_WEIGHTS}
    for index in range(count):
        profile = synthetic_profile(rng, today, zip5s)
        row = {
            "email": f"Patient.{index}@Example.org",
            "first_name": f"First{index % 997}",
            "last_name": f"Last{index % 1009}",
            "phone": f"+1617555{index % 10000:04d}",
            "external_id": f"ehr-{index}",
        }
        for key, value in profile.items():
            if value is None:
                row[key] = ""
            elif isinstance(value, list):
                row[key] = "; ".join(value)
            elif isinstance(value, dt.date):
                row[key] = value.strftime("%m/%d/%Y") if index % 2 else value.isoformat()
            else:
                row[key] = str(value)
        yield row


def run(rows: list[dict[str, str]], batch: int) -> tuple[float, dict[str, int]]:
    from contacts import services

    totals = {"created": 0, "updated": 0, "unchanged": 0}
    start = time.perf_counter()
    for offset in range(0, len(rows), batch):
        result = services.contacts_bulk_upsert(
            rows=rows[offset : offset + batch], actor=None, source="bench"
        )
        if not result.ok:
            raise SystemExit(f"bench rows invalid: {result.errors[0].as_dict()}")
        totals["created"] += result.created
        totals["updated"] += result.updated
        totals["unchanged"] += result.unchanged
    return time.perf_counter() - start, totals


# --- file readers: old (openpyxl read-only) vs new (streaming, bounded) ---------------------

OLD_ADDRESS_SPACE = 4 << 30


def _old_read(path: Path) -> int:
    """The reader before issue 12: the whole file in memory, openpyxl read-only."""
    import csv
    import io

    raw = path.read_bytes()
    if path.suffix == ".csv":
        text = raw.decode("utf-8-sig")
        return sum(1 for _ in csv.reader(io.StringIO(text, newline=""))) - 1
    import openpyxl

    book = openpyxl.load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
    try:
        sheet = book.active
        return sum(1 for _ in sheet.iter_rows(values_only=True)) - 1  # type: ignore[union-attr]
    finally:
        book.close()


def _new_read(path: Path) -> int:
    from contacts.imports import files

    fmt = path.suffix.lstrip(".")
    with path.open("rb") as handle:
        files.format_of(path.name, handle.read(8))
        if fmt == "xlsx":
            files.check_workbook_zip(handle, files.Limits.current())
    with files.open_table(path.name, fmt) as table:
        return sum(1 for _ in table.rows)


def read_one(reader: str, path: Path) -> None:
    """Child: read one file with one reader; one JSON line with seconds and outcome."""
    if reader == "old":
        resource.setrlimit(resource.RLIMIT_AS, (OLD_ADDRESS_SPACE, OLD_ADDRESS_SPACE))
    os.environ.setdefault("LUXMAIL_ENV", "test")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "luxmail.settings")
    os.environ["LUXMAIL_IMPORT_DIR"] = str(path.parent)
    import django

    django.setup()
    from contacts.services import ContactsError

    start = time.perf_counter()
    try:
        rows = (_old_read if reader == "old" else _new_read)(path)
        outcome = f"accepted, {rows:,} rows"
    except ContactsError as error:
        outcome = f"refused: {error.message}"
    except Exception as error:  # the old reader's crashes are the point of the comparison
        outcome = f"crashed: {type(error).__name__}"
    seconds = time.perf_counter() - start
    sys.stdout.write(json.dumps({"seconds": seconds, "outcome": outcome}) + "\n")


def _measure(reader: str, path: Path, env: dict[str, str], timeout: float) -> dict[str, object]:
    child = subprocess.Popen(
        [sys.executable, __file__, "--read-one", reader, str(path)],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert child.stdout is not None
    started = time.monotonic()
    timer_killed = False
    while True:  # wait4, not Popen.poll: only wait4 returns the child's own rusage
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() - started > timeout:
            child.kill()
            timer_killed = True
            _, status, usage = os.wait4(child.pid, 0)
            break
        time.sleep(0.05)
    child.returncode = status
    output = child.stdout.read()
    found: dict[str, object] = {"seconds": time.monotonic() - started, "outcome": "?"}
    if output.strip():
        found.update(json.loads(output.strip().splitlines()[-1]))
    elif timer_killed:
        found["outcome"] = f"killed after {timeout:.0f} s"
    else:
        found["outcome"] = f"died (status {status})"
    found["peak_mb"] = usage.ru_maxrss / 1024
    return found


def _valid_workbook(path: Path, rows: int) -> None:
    import openpyxl

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet()
    sheet.append(["Email", "First name", "Date of birth", "Zip code", "Phone", "Consent"])
    for i in range(rows):
        sheet.append(
            [
                f"patient{i}@example.org",
                f"First{i % 997}",
                dt.date(1950 + i % 50, 1 + i % 12, 1 + i % 28),
                2100 + i % 90,
                6175550000 + i % 10000,
                i % 2 == 0,
            ]
        )
    book.save(path)


def readers(old_timeout: float) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from contacts.tests import hostile_files

    print(f"load before: {system_load()}")
    with tempfile.TemporaryDirectory() as folder:
        cases: list[tuple[str, Path, dict[str, str]]] = []
        valid = Path(folder) / "valid-100k.xlsx"
        _valid_workbook(valid, 100_000)
        cases.append(("valid 100,000-row workbook (openpyxl)", valid, {}))
        for number, case in enumerate(hostile_files.CASES):
            path = Path(folder) / f"{number}-{case.filename}"
            path.write_bytes(case.build())
            cases.append((case.name, path, case.env))
        header = f"{'file':52} {'old s':>7} {'old MB':>7} {'new s':>6} {'new MB':>7} {'ratio':>6}"
        print(header + "  new outcome / old outcome")
        worst_accepted: tuple[float, float, str] = (0.0, 0.0, "")
        worst_refused: tuple[float, float, str] = (0.0, 0.0, "")
        for name, path, env in cases:
            old = _measure("old", path, {}, old_timeout)
            new = _measure("new", path, env, 120)
            old_s, new_s = float(old["seconds"]), float(new["seconds"])  # type: ignore[arg-type]
            new_mb = float(new["peak_mb"])  # type: ignore[arg-type]
            print(
                f"{name[:52]:52} {old_s:7.2f} {old['peak_mb']:7.0f} {new_s:6.2f} {new_mb:7.0f} "
                f"{old_s / max(new_s, 1e-6):6.1f}  {str(new['outcome'])[:70]} / "
                f"{str(old['outcome'])[:40]}"
            )
            figure = (new_s, new_mb, name)
            if str(new["outcome"]).startswith("accepted"):
                worst_accepted = max(worst_accepted, figure, key=lambda f: (f[1], f[0]))
            else:
                worst_refused = max(worst_refused, figure, key=lambda f: (f[1], f[0]))
        print(
            f"worst accepted (new): {worst_accepted[2]}: {worst_accepted[0]:.2f} s, "
            f"{worst_accepted[1]:.0f} MB peak"
        )
        print(
            f"worst refused (new): {worst_refused[2]}: {worst_refused[0]:.2f} s, "
            f"{worst_refused[1]:.0f} MB peak"
        )
    print(f"load after: {system_load()}")


# --- the whole import job (upload, preview, run) on a generated file: rows/s and RSS --------


def _write_csv(path: Path, rows: int, seed: int) -> None:
    """A CSV of ``rows`` synthetic patients, written as it is generated (any size)."""
    import csv

    with path.open("w", newline="", encoding="utf-8") as handle:
        writer: csv.DictWriter[str] | None = None
        for row in iter_csv_rows(rows, seed):
            if writer is None:
                writer = csv.DictWriter(handle, fieldnames=list(row))
                writer.writeheader()
            writer.writerow(row)


def job_one(path: Path, database: str) -> None:
    """Child: upload, map (guessed), preview and run one import job; one JSON line."""
    from django.core.files.uploadedfile import UploadedFile

    setup_django(database)
    from django.contrib.auth import get_user_model
    from django.db import connection

    from contacts.imports import services as imports
    from contacts.models import ImportJob

    with connection.cursor() as cursor:
        cursor.execute(TRUNCATE)
    user, _ = get_user_model().objects.get_or_create(
        username="bench-import", defaults={"is_superuser": True, "is_staff": True}
    )
    start = time.perf_counter()
    cpu_start = time.process_time()
    with path.open("rb") as handle:
        job = imports.import_job_create(
            uploaded=UploadedFile(handle, name=path.name, size=path.stat().st_size), actor=user
        )
    job.refresh_from_db()
    imports.import_job_map(job=job, mapping=job.mapping, actor=user)  # preview runs eagerly
    previewed = time.perf_counter()
    cpu_previewed = time.process_time()
    job.refresh_from_db()
    if job.error_count:
        raise SystemExit(f"bench file has {job.error_count} row errors: {job.errors[:3]}")
    imports.import_job_confirm(job=job, actor=user)  # the import runs eagerly on commit
    finished = time.perf_counter()
    cpu_finished = time.process_time()
    job = ImportJob.objects.get(pk=job.pk)
    result = {
        "status": job.status,
        "failure": job.failure,
        "rows": job.total_rows,
        "created": job.created_count,
        "preview_s": previewed - start,
        "run_s": finished - previewed,
        # This process's CPU (PostgreSQL's is not in it): on a loaded machine the wall
        # time mostly measures the wait for a core.
        "preview_cpu_s": cpu_previewed - cpu_start,
        "run_cpu_s": cpu_finished - cpu_previewed,
    }
    sys.stdout.write(json.dumps(result) + "\n")


def _job_measure(
    rows: int, database: str, seed: int, folder: Path, tree: Path | None = None
) -> dict[str, Any]:
    """One job in a child process: this tree's code, or ``tree``'s (the baseline)."""
    path = folder / f"bench-{rows}.csv"
    if not path.exists():
        _write_csv(path, rows, seed)
    env = {
        **os.environ,
        "LUXMAIL_IMPORT_DIR": str(folder / "uploads"),
        "LUXMAIL_IMPORT_MAX_ROWS": str(rows + 1),
        "LUXMAIL_IMPORT_MAX_BYTES": str(path.stat().st_size + 1024),
    }
    script = Path(__file__) if tree is None else tree / "bench" / "import.py"
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    child = subprocess.Popen(
        [sys.executable, str(script), "--job-one", str(path), "--database", database],
        env=env,
        cwd=str(script.parent.parent),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)  # the child's own peak RSS
    child.returncode = status
    lines = output.strip().splitlines()
    if not lines:
        raise SystemExit(f"import child died (status {status})")
    found: dict[str, Any] = json.loads(lines[-1])
    found["peak_mb"] = usage.ru_maxrss / 1024
    if found["status"] != "succeeded":
        raise SystemExit(f"import of {rows:,} rows {found['status']}: {found['failure']}")
    return found


def _vacuum(database: str) -> None:
    """CI's PostgreSQL runs without autovacuum: every job starts from analyzed tables.
    On a first run the database is created here and its tables by the job's migrate."""
    import psycopg

    from bench.common import PG_URL, create_database

    create_database(database)
    with psycopg.connect(PG_URL.format(name=database), autocommit=True) as conn:
        if conn.execute("SELECT to_regclass('contacts_contact')").fetchone() == (None,):
            return
        conn.execute(
            "VACUUM ANALYZE contacts_contact, contacts_contactprofile, contacts_contacttokenset"
        )


def _line(label: str, rows: int, found: dict[str, Any]) -> str:
    return (
        f"{label:>9} {rows:>9,} rows: check {rows / found['preview_s']:6,.0f} rows/s, "
        f"import {rows / found['run_s']:6,.0f} rows/s, CPU check "
        f"{1e6 * found['preview_cpu_s'] / rows:4,.0f} µs/row, import "
        f"{1e6 * found['run_cpu_s'] / rows:4,.0f} µs/row, peak RSS {found['peak_mb']:4.0f} MB; "
        f"load {system_load()}"
    )


def _baseline_tree(ref: str, folder: Path) -> Path:
    """The code of ``ref`` (e.g. ``main``: the import before this change), unpacked."""
    root = Path(__file__).resolve().parent.parent
    tree = folder / "baseline"
    tree.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(root), "archive", ref], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree


def jobs(big: int, small: int, database: str, seed: int, baseline: str, repeat: int) -> None:
    """The A/B: baseline (``baseline`` ref) and this code alternate on the same file,
    ``repeat`` times each; medians, then the big file with this code alone."""
    import statistics

    print(f"load before: {system_load()}")
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        tree = _baseline_tree(baseline, work) if baseline else None
        runs: dict[str, list[dict[str, Any]]] = {"new": [], "baseline": []}
        for _ in range(repeat):
            for label in ("baseline", "new") if tree else ("new",):
                _vacuum(database)
                found = _job_measure(
                    small, database, seed, work, tree if label == "baseline" else None
                )
                runs[label].append(found)
                print(_line(label, small, found), flush=True)

        def median(label: str, key: str) -> float:
            return statistics.median(small / r[key] for r in runs[label])

        new_check, new_import = median("new", "preview_s"), median("new", "run_s")
        print(
            f"median of {repeat}, {small:,} rows, this code: check {new_check:,.0f} rows/s, "
            f"import {new_import:,.0f} rows/s (target >= 5,000 rows/s)"
        )
        if tree:
            old_check, old_import = median("baseline", "preview_s"), median("baseline", "run_s")
            print(
                f"median of {repeat}, {small:,} rows, baseline ({baseline}): check "
                f"{old_check:,.0f} rows/s, import {old_import:,.0f} rows/s; ratio this/baseline: "
                f"check {new_check / old_check:.2f}x, import {new_import / old_import:.2f}x"
            )
        if big:
            _vacuum(database)
            large = _job_measure(big, database, seed, work)
            print(_line("new", big, large))
            base = runs["new"][-1]
            print(
                f"{big:,} rows: peak RSS {large['peak_mb']:.0f} MB (target <= 256 MB), "
                f"{large['peak_mb'] / base['peak_mb']:.2f}x the {small:,}-row file's; "
                f"import rows/s {(big / large['run_s']) / (small / base['run_s']):.2f}x "
                "(near 1.0: memory and rate independent of the file's size)"
            )
    print(f"load after: {system_load()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--readers", action="store_true", help="old vs new file readers")
    parser.add_argument("--old-timeout", type=float, default=60.0)
    parser.add_argument("--read-one", nargs=2, metavar=("READER", "PATH"), help=argparse.SUPPRESS)
    parser.add_argument(
        "--job",
        type=int,
        metavar="ROWS",
        help="upload, check and import a generated CSV of --rows rows (--repeat times, A/B "
        "with --baseline), then one of ROWS rows (0: none); rows/s, CPU, peak RSS, load",
    )
    parser.add_argument(
        "--baseline",
        metavar="REF",
        default="",
        help="with --job: also run the --rows file with the code of git REF (e.g. main), "
        "alternating with this code, and print the ratio",
    )
    parser.add_argument("--repeat", type=int, default=1, help="with --job: A/B rounds")
    parser.add_argument("--job-one", metavar="PATH", help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=2_000)
    parser.add_argument("--database", default="luxmail_bench_import")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if args.read_one:
        read_one(args.read_one[0], Path(args.read_one[1]))
        return
    if args.readers:
        readers(args.old_timeout)
        return
    if args.job_one:
        job_one(Path(args.job_one), args.database)
        return
    if args.job is not None:
        jobs(args.job, args.rows, args.database, args.seed, args.baseline, args.repeat)
        return

    setup_django(args.database)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(TRUNCATE)
    rows = csv_rows(args.rows, args.seed)
    print(f"load before: {system_load()}")
    # Baseline in the same run: one crypto.sealed() per field, as before sealed_row().
    from luxmail import crypto

    batched = crypto.sealed_row

    def per_field(model: Any, row_id: Any, values: Any) -> dict[str, bytes | None]:
        return {name: crypto.sealed(model, name, row_id, value) for name, value in values.items()}

    crypto.sealed_row = per_field  # type: ignore[assignment]
    baseline, _ = run(rows, args.batch)
    crypto.sealed_row = batched  # type: ignore[assignment]
    with connection.cursor() as cursor:
        cursor.execute(TRUNCATE)
    elapsed, totals = run(rows, args.batch)
    print(
        f"first import: {len(rows):,} rows in {elapsed:.2f} s = {len(rows) / elapsed:,.0f} rows/s "
        f"({totals['created']:,} created; target >= 5,000 rows/s); baseline (per-field "
        f"sealing) {len(rows) / baseline:,.0f} rows/s, ratio {baseline / elapsed:.2f}x; "
        f"load {system_load()}"
    )
    elapsed, totals = run(rows, args.batch)
    print(
        f"re-import (no changes): {len(rows) / elapsed:,.0f} rows/s "
        f"({totals['unchanged']:,} unchanged, {totals['updated']:,} updated)"
    )
    changed = [{**row, "journey_stage": "overdue", "zip_code": "02139"} for row in rows]
    elapsed, totals = run(changed, args.batch)
    print(
        f"re-import with 2 changed PHI fields: {len(rows) / elapsed:,.0f} rows/s "
        f"({totals['updated']:,} updated: decrypt, merge, re-encrypt, re-tokenize)"
    )
    print(f"load after: {system_load()}")


if __name__ == "__main__":
    main()
