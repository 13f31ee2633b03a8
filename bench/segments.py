"""Segment count benchmark: N synthetic contacts, a 3-condition PHI segment.

    .venv/bin/python bench/segments.py                 # 1,000,000 contacts (target < 300 ms)
    .venv/bin/python bench/segments.py --contacts 100000 --runs 21

Loads contacts into the dedicated database ``luxmail_bench`` (created when missing)
with PostgreSQL COPY, tokenized by the same ``contacts.attributes.profile_tokens`` the
services use and encrypted with the same ``crypto.sealed``. Distributions: ages from
a broad adult-heavy curve, ~10 % type 2 diabetes (E11.x, likelier with age),
hypertension, hyperlipidemia and others, ZIP codes clustered around a dozen areas.
Then it prints the median time of ``segments.count(rules)`` (what ``segment_count`` runs) for
``condition E11 AND age >= 50 AND zip3 in {021, 022, 024}``.

An existing data set of the requested size is reused (``--reload`` rebuilds it).
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import median_seconds, setup_django, system_load

RULES = {
    "all": [
        {"field": "condition", "op": "eq", "value": "E11"},
        {"field": "age", "op": "gte", "value": 50},
        {"field": "zip3", "op": "in", "value": ["021", "022", "024"]},
    ]
}
ZIP3_WEIGHTS = {
    "021": 14,
    "022": 8,
    "024": 6,
    "100": 12,
    "112": 9,
    "606": 9,
    "941": 7,
    "303": 6,
    "770": 8,
    "850": 5,
    "331": 6,
    "981": 5,
    "191": 5,
}
DIABETES = ["E11.9", "E11.9", "E11.9", "E11.65", "E11.22", "E11.40", "E11.649"]
OTHER_CONDITIONS = [
    ("I10", 0.25),
    ("E78.5", 0.15),
    ("E66.9", 0.10),
    ("J45.909", 0.08),
    ("F32.9", 0.07),
    ("J44.9", 0.04),
    ("N18.3", 0.03),
    ("I25.10", 0.04),
]
MEDS = {
    "E11": ["metformin 500 mg", "insulin glargine", "empagliflozin"],
    "I10": ["lisinopril 10 mg", "amlodipine 5 mg"],
    "E78": ["atorvastatin 20 mg"],
    "J45": ["albuterol inhaler"],
    "F32": ["sertraline 50 mg"],
}
LANGUAGES = [("en", 80), ("es", 13), ("zh", 2), ("vi", 1.5), ("ht", 1), ("pt", 1.5), ("ru", 1)]
INSURANCE = [("commercial", 50), ("medicare", 20), ("medicaid", 20), ("self_pay", 7), ("other", 3)]
PLANS = ["Blue Shield PPO", "Aetna HMO", "Tufts Select", "Harvard Pilgrim", "Medicare Advantage"]
STAGES = [("active", 60), ("new", 10), ("overdue", 20), ("at_risk", 10)]
CHUNK = 20_000


def _weighted(rng: random.Random, pairs: list[tuple[str, float]]) -> str:
    return rng.choices([p[0] for p in pairs], weights=[p[1] for p in pairs])[0]


def synthetic_profile(rng: random.Random, today: dt.date, zip5s: dict[str, list[str]]) -> dict:
    age = max(0, min(100, int(rng.gauss(47, 21))))
    birth = today - dt.timedelta(days=age * 365 + rng.randrange(365))
    conditions = []
    if rng.random() < 0.02 + 0.16 * min(age, 80) / 80:  # ≈10 % overall, likelier with age
        conditions.append(rng.choice(DIABETES))
    for code, p in OTHER_CONDITIONS:
        if rng.random() < p * (0.5 + age / 60):
            conditions.append(code)
    meds = sorted({m for c in conditions for m in MEDS.get(c[:3], [])[:2]})
    zip3 = rng.choices(list(ZIP3_WEIGHTS), weights=list(ZIP3_WEIGHTS.values()))[0]
    last_visit = today - dt.timedelta(days=int(rng.expovariate(1 / 200)) % 1500)
    profile = {
        "birth_date": birth,
        "sex": rng.choices(["female", "male", "other"], weights=[51, 48, 1])[0],
        "language": _weighted(rng, LANGUAGES),
        "zip_code": rng.choice(zip5s[zip3]),
        "conditions": sorted(set(conditions)) or None,
        "medications": meds or None,
        "insurance_type": _weighted(rng, INSURANCE),
        "insurance_plan": rng.choice(PLANS),
        "primary_provider": f"Dr. Provider {rng.randrange(300)}",
        "last_visit": last_visit,
        "next_appointment": today + dt.timedelta(days=rng.randrange(1, 180))
        if rng.random() < 0.4
        else None,
        "journey_stage": _weighted(rng, STAGES),
    }
    return profile


def load(total: int, seed: int) -> None:
    from django.core.management import call_command
    from django.db import connection

    from contacts import attributes
    from contacts.models import Contact, ContactProfile
    from luxmail import crypto

    rng = random.Random(seed)
    today = dt.date.today()
    zip5s = {z3: [f"{z3}{rng.randrange(100):02d}" for _ in range(30)] for z3 in ZIP3_WEIGHTS}
    connection.ensure_connection()
    raw = connection.connection
    raw.autocommit = True
    # Fresh tables (and their index definitions) from the migrations.
    call_command("migrate", "contacts", "zero", verbosity=0, interactive=False)
    call_command("migrate", verbosity=0, interactive=False)
    with connection.cursor() as cursor:
        # Build indexes once after the load instead of maintaining them per row.
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes "
            "WHERE tablename = 'contacts_contacttokenset'"
        )
        index_defs = cursor.fetchall()
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'contacts_contacttokenset'::regclass"
        )
        constraints = cursor.fetchall()
        for name, _ in constraints:
            cursor.execute(f'ALTER TABLE contacts_contacttokenset DROP CONSTRAINT "{name}"')
        for name, _ in index_defs:
            cursor.execute(f'DROP INDEX IF EXISTS "{name}"')

    started = time.perf_counter()
    token_count = 0
    for chunk_start in range(0, total, CHUNK):
        size = min(CHUNK, total - chunk_start)
        contact_rows = []
        profile_rows = []
        token_rows: list[tuple[int, list[int]]] = []
        now = dt.datetime.now(dt.UTC)
        for offset in range(size):
            pk = chunk_start + offset + 1
            row_uuid = uuid.UUID(int=rng.getrandbits(128), version=4)
            email = f"patient{pk}@{rng.choice(['example.org', 'example.com', 'mail.example'])}"
            profile = synthetic_profile(rng, today, zip5s)
            contact_rows.append(
                (
                    pk,
                    row_uuid,
                    crypto.sealed(Contact, "email", row_uuid, email),
                    crypto.blind_index("email", email),
                    email.rpartition("@")[2],
                    crypto.sealed(Contact, "first_name", row_uuid, f"First{pk % 997}"),
                    crypto.sealed(Contact, "last_name", row_uuid, f"Last{pk % 1009}"),
                    "active",
                    "",
                    now,
                    now,
                    now,
                )
            )
            profile_rows.append(
                (
                    pk,
                    row_uuid,
                    crypto.sealed(ContactProfile, "birth_date", row_uuid, profile["birth_date"]),
                    crypto.sealed(ContactProfile, "zip_code", row_uuid, profile["zip_code"]),
                    crypto.sealed(ContactProfile, "conditions", row_uuid, profile["conditions"]),
                    "{}",
                    now,
                )
            )
            token_rows.append((pk, sorted(attributes.profile_tokens(profile, {}, {}))))
        with raw.cursor() as cur:
            with cur.copy(
                "COPY contacts_contact (id, uuid, email, email_bidx, domain, first_name, "
                "last_name, status, time_zone, status_changed_at, created_at, updated_at) "
                "FROM STDIN"
            ) as copy:
                for row in contact_rows:
                    copy.write_row(row)
            with cur.copy(
                "COPY contacts_contactprofile (contact_id, uuid, birth_date, zip_code, "
                "conditions, custom, updated_at) FROM STDIN"
            ) as copy:
                for row in profile_rows:
                    copy.write_row(row)
            with cur.copy(
                "COPY contacts_contacttokenset (contact_id, tokens) FROM STDIN (FORMAT BINARY)"
            ) as copy:
                copy.set_types(["int8", "int8[]"])
                for pair in token_rows:
                    copy.write_row(pair)
        token_count += sum(len(row[1]) for row in token_rows)
        done = chunk_start + size
        rate = done / (time.perf_counter() - started)
        print(
            f"  loaded {done:,} contacts, {token_count:,} tokens ({rate:,.0f} contacts/s)",
            flush=True,
        )

    print("building token indexes …", flush=True)
    with raw.cursor() as cur:
        cur.execute("SET maintenance_work_mem = '1GB'")
        for name, definition in constraints:
            cur.execute(
                f'ALTER TABLE contacts_contacttokenset ADD CONSTRAINT "{name}" {definition}'
            )
        restored = {name for name, _ in constraints}
        for name, definition in index_defs:
            if name not in restored:
                cur.execute(definition)
        cur.execute(
            "SELECT setval(pg_get_serial_sequence('contacts_contact', 'id'), "
            "(SELECT max(id) FROM contacts_contact))"
        )
        cur.execute("VACUUM (ANALYZE) contacts_contact")
        cur.execute("VACUUM (ANALYZE) contacts_contacttokenset")
        cur.execute("VACUUM (ANALYZE) contacts_contactprofile")
    print(f"loaded in {time.perf_counter() - started:,.0f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--database", default="luxmail_bench")
    parser.add_argument("--seed", type=int, default=20260301)
    parser.add_argument("--reload", action="store_true", help="rebuild the data set")
    parser.add_argument("--explain", action="store_true", help="print the query plan")
    args = parser.parse_args()

    setup_django(args.database)
    from django.db import connection

    from contacts import segments
    from contacts.models import Contact

    print(f"load before: {system_load()}")
    existing = Contact.objects.count()
    if existing != args.contacts or args.reload:
        print(f"creating {args.contacts:,} synthetic contacts in {args.database} …", flush=True)
        load(args.contacts, args.seed)
    else:
        print(f"reusing {existing:,} contacts in {args.database}")

    if args.explain:
        from contacts.models import ContactTokenSet

        q = segments._on_token_sets(segments.compile_rules(RULES, segments.context()))
        sql, params = ContactTokenSet.objects.filter(q).values("pk").query.sql_with_params()
        with connection.cursor() as cursor:
            explain = "EXPLAIN (ANALYZE, BUFFERS) SELECT count(*) FROM (" + sql + ") q"  # noqa: S608
            cursor.execute(explain, params)
            print("\n".join(row[0] for row in cursor.fetchall()))
    count = segments.count(RULES)
    median = median_seconds(lambda: segments.count(RULES), runs=args.runs)
    print(f"segment: condition E11 AND age >= 50 AND zip3 in (021, 022, 024) -> {count:,} contacts")
    print(
        f"median of {args.runs} counts over {args.contacts:,} contacts: {median * 1000:.1f} ms "
        f"(target < 300 ms)"
    )
    print(f"load after: {system_load()}")


if __name__ == "__main__":
    main()
