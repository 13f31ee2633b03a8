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
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import setup_django, system_load

TRUNCATE = (
    "TRUNCATE contacts_contacttokenset, contacts_contactprofile, contacts_consent, "
    "contacts_listmembership, contacts_contact RESTART IDENTITY CASCADE"
)


def csv_rows(count: int, seed: int) -> list[dict[str, str]]:
    from bench.segments import ZIP3_WEIGHTS, synthetic_profile

    rng = random.Random(seed)
    today = dt.date.today()
    zip5s = {z3: [f"{z3}{rng.randrange(100):02d}" for _ in range(30)] for z3 in ZIP3_WEIGHTS}
    rows = []
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
        rows.append(row)
    return rows


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=2_000)
    parser.add_argument("--database", default="luxmail_bench_import")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    setup_django(args.database)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(TRUNCATE)
    rows = csv_rows(args.rows, args.seed)
    print(f"load before: {system_load()}")
    elapsed, totals = run(rows, args.batch)
    print(
        f"first import: {len(rows):,} rows in {elapsed:.2f} s = {len(rows) / elapsed:,.0f} rows/s "
        f"({totals['created']:,} created; target >= 3,000 rows/s)"
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
