"""Token layout 2 (issue 16 §3): decade and century date tokens, the layout guard, the
reindex that moves old token sets to it, and the order of a conjunction's conditions."""

import datetime as dt
import importlib
import io
import random

import pytest
from django.apps import apps as django_apps
from django.core.management import call_command

from contacts import attributes, segments, services, tokens
from contacts.models import Contact, ContactTokenSet, TokenIndexState
from contacts.tests.reference import _age, _date, age

DATE_FIELDS = ("birth_date", "last_visit", "next_appointment")


def _days_of(value: str) -> set[dt.date]:
    """Every date one hierarchy value stands for (the reference for the covers)."""
    level, text = value[0], value[1:]
    if level == "D":
        return {dt.date.fromisoformat(text)}
    if level == "M":
        first = dt.date(int(text[:4]), int(text[5:7]), 1)
        years = (first.year, first.year)
        months = (first.month, first.month)
    else:
        span = {"C": 100, "X": 10, "Y": 1}[level]
        start = int(text) * span
        years = (start, start + span - 1)
        months = (1, 12)
    found = set()
    for year in range(years[0], years[1] + 1):
        for month in range(months[0], months[1] + 1):
            day = dt.date(year, month, 1)
            while day.month == month:
                found.add(day)
                day += dt.timedelta(days=1)
    return found


def _exact_days(lo: dt.date, hi: dt.date) -> set[dt.date]:
    lo, hi = max(lo, tokens.DATE_MIN), min(hi, tokens.DATE_MAX)
    return {lo + dt.timedelta(days=i) for i in range((hi - lo).days + 1)}


EDGES = [
    (dt.date(1900, 1, 1), dt.date(1999, 12, 31), ["C19"]),
    (dt.date(1900, 1, 1), dt.date(2099, 12, 31), ["C19", "C20"]),
    (dt.date(1850, 1, 1), dt.date(2150, 1, 1), ["C19", "C20"]),
    (dt.date(1990, 1, 1), dt.date(2009, 12, 31), ["X199", "X200"]),
    (dt.date(1989, 12, 31), dt.date(2010, 1, 1), ["D1989-12-31", "X199", "X200", "D2010-01-01"]),
    (dt.date(1999, 1, 1), dt.date(2000, 12, 31), ["Y1999", "Y2000"]),
    (dt.date(2000, 2, 29), dt.date(2000, 2, 29), ["D2000-02-29"]),
    (dt.date(2000, 2, 1), dt.date(2000, 2, 29), ["M2000-02"]),
    (dt.date(2000, 2, 1), dt.date(2000, 2, 28), ["D2000-02-" + f"{d:02d}" for d in range(1, 29)]),
    (
        dt.date(1976, 12, 8),
        tokens.DATE_MAX,
        ["D1976-12-" + f"{d:02d}" for d in range(8, 32)]
        + ["Y1977", "Y1978", "Y1979", "X198", "X199", "C20"],
    ),
    (dt.date(2026, 5, 2), dt.date(2026, 5, 1), []),
]


@pytest.mark.parametrize(("lo", "hi", "expected"), EDGES)
def test_coarse_cover_edges(lo, hi, expected):
    assert tokens.date_range_values(lo, hi) == expected
    covered = set().union(*(_days_of(v) for v in expected)) if expected else set()
    assert covered == (_exact_days(lo, hi) if lo <= hi else set())


def test_every_cover_is_exact_and_coarse_is_never_longer():
    rng = random.Random(16)
    ends = [dt.date(1899, 12, 31), tokens.DATE_MIN, tokens.DATE_MAX, dt.date(2000, 2, 29)]
    ends += [dt.date(y, 1, 1) for y in (1900, 1950, 1990, 2000, 2010, 2099)]
    ends += [dt.date(y, 12, 31) for y in (1909, 1999, 2009, 2098)]
    ranges = [(a, b) for a in ends for b in ends if a <= b]
    for _ in range(150):
        a = tokens.DATE_MIN + dt.timedelta(days=rng.randrange(73_000))
        ranges.append((a, a + dt.timedelta(days=rng.choice([0, 30, 400, 4000, 40_000]))))
    for lo, hi in ranges:
        coarse = tokens.date_range_values(lo, hi)
        fine = tokens.date_range_values(lo, hi, coarse=False)
        assert not any(v[0] in "CX" for v in fine)
        assert len(coarse) <= len(fine)
        for cover in (coarse, fine):
            days = [d for v in cover for d in _days_of(v)]
            assert len(days) == len(set(days)), (lo, hi)  # no day twice
            assert set(days) == _exact_days(lo, hi), (lo, hi)


def test_a_date_carries_every_level():
    assert tokens.date_values(dt.date(2000, 2, 29)) == (
        "C20",
        "X200",
        "Y2000",
        "M2000-02",
        "D2000-02-29",
    )
    assert tokens.date_values(dt.date(1909, 12, 31))[:2] == ("C19", "X190")


def test_age_50_needs_few_tokens():
    lo, hi = tokens.age_range(50, None, dt.date(2026, 12, 7))
    assert len(tokens.date_range_values(lo, hi)) == 31
    assert len(tokens.date_range_values(lo, hi, coarse=False)) == 94


# --- on PostgreSQL -------------------------------------------------------------------------

# Not before the latest birth date: ages are never negative.
TODAYS = [dt.date(2026, 12, 7), dt.date(2024, 2, 29), dt.date(2028, 2, 28), dt.date(2030, 1, 1)]
BIRTHS = sorted(
    {
        dt.date(1900, 1, 1),
        dt.date(1909, 12, 31),
        dt.date(1910, 1, 1),
        dt.date(1949, 12, 31),
        dt.date(1950, 1, 1),
        dt.date(1960, 2, 29),
        dt.date(1976, 12, 7),
        dt.date(1976, 12, 8),
        dt.date(1999, 12, 31),
        dt.date(2000, 1, 1),
        dt.date(2000, 2, 29),
        dt.date(2009, 12, 31),
        dt.date(2010, 1, 1),
        dt.date(2010, 12, 31),
        dt.date(2024, 2, 29),
    }
)
AGE_RULES = [
    ("gte", 50),
    ("gte", 0),
    ("lte", 16),
    ("lte", 49),
    ("between", [14, 26]),
    ("between", [50, 64]),
    ("eq", 100),
    ("in", [0, 10, 76]),
]
DATE_RULES = [
    ("gte", "1950-01-01"),
    ("lte", "1999-12-31"),
    ("between", ["1909-12-31", "2010-01-01"]),
    ("between", ["1900-01-01", "1999-12-31"]),
    ("eq", "2000-02-29"),
    ("more_than_days_ago", 3650),
]


@pytest.fixture
def born(postgres, admin):
    rows = [{"email": f"p{i}@example.org", "birth_date": day} for i, day in enumerate(BIRTHS)]
    services.contacts_bulk_upsert(rows=rows, actor=admin)


def _birth_by_pk():
    from contacts.models import ContactProfile
    from luxmail import crypto

    access = crypto.phi_access(actor="test", purpose="test.reference")
    return {
        p.contact_id: crypto.reveal(p, "birth_date", access=access)
        for p in ContactProfile.objects.all()
    }


def _ids(rules, today, coarse):
    ctx = segments.Context(today=today, now=segments.context().now, coarse_dates=coarse)
    q = segments.compile_rules(rules, ctx)
    return set(Contact.objects.filter(q).values_list("pk", flat=True))


def _strip_coarse_tokens():
    """Token sets as layout 1 wrote them: without decade and century tokens."""
    coarse = set()
    for name in DATE_FIELDS:
        field = attributes.PROFILE_ATTRIBUTES[name].token_field
        coarse |= {tokens.token(field, f"C{c}") for c in (19, 20)}
        coarse |= {tokens.token(field, f"X{d}") for d in range(190, 210)}
    for row in ContactTokenSet.objects.all():
        row.tokens = [t for t in row.tokens if t not in coarse]
        row.save(update_fields=["tokens"])


def test_coarse_and_fine_covers_find_the_same_contacts(born):
    births = _birth_by_pk()
    for today in TODAYS:
        for op, value in AGE_RULES:
            rules = {"field": "age", "op": op, "value": value}
            want = {pk for pk, day in births.items() if _age(day, op, value, today)}
            assert _ids(rules, today, coarse=True) == want, (today, op, value)
            assert _ids(rules, today, coarse=False) == want, (today, op, value)
        for op, value in DATE_RULES:
            rules = {"field": "birth_date", "op": op, "value": value}
            want = {pk for pk, day in births.items() if _date(day, op, value, today)}
            assert _ids(rules, today, coarse=True) == want, (today, op, value)
            assert _ids(rules, today, coarse=False) == want, (today, op, value)


def test_old_layout_falls_back_to_fine_covers_until_reindexed(born):
    births = _birth_by_pk()
    today = dt.date(2026, 12, 7)
    rules = {"all": [{"field": "age", "op": "gte", "value": 50}]}
    want = {pk for pk, day in births.items() if age(day, today) >= 50}
    _strip_coarse_tokens()
    # Without the guard the coarse cover misses every contact only a decade token finds.
    assert _ids(rules, today, coarse=True) != want
    TokenIndexState.objects.update_or_create(pk=1, defaults={"version": 1})
    segments.forget_token_layout()
    try:
        assert segments.context(today).coarse_dates is False
        assert set(segments.matching(rules, today=today).values_list("pk", flat=True)) == want
        assert segments.count(rules, today=today) == len(want)

        out = io.StringIO()
        call_command("contacts_reindex", batch=4, stdout=out)
        assert "token layout 2 recorded" in out.getvalue()
        assert TokenIndexState.objects.get().version == tokens.TOKEN_VERSION
        assert segments.context(today).coarse_dates is True
        assert segments.count(rules, today=today) == len(want)
        assert _ids(rules, today, coarse=True) == want
    finally:
        segments.forget_token_layout()


def test_reindex_restores_what_the_services_write(born):
    written = dict(ContactTokenSet.objects.values_list("contact_id", "tokens"))
    _strip_coarse_tokens()
    assert dict(ContactTokenSet.objects.values_list("contact_id", "tokens")) != written
    call_command("contacts_reindex", batch=3, stdout=io.StringIO())
    assert dict(ContactTokenSet.objects.values_list("contact_id", "tokens")) == written


def test_interrupted_reindex_resumes_after_the_last_id(born):
    TokenIndexState.objects.update_or_create(pk=1, defaults={"version": 1})
    _strip_coarse_tokens()
    first = min(Contact.objects.values_list("pk", flat=True))
    out = io.StringIO()
    call_command("contacts_reindex", batch=5, start_after=first, stdout=out)
    assert f"{len(BIRTHS) - 1} of {len(BIRTHS) - 1} contacts" in out.getvalue()
    field = attributes.PROFILE_ATTRIBUTES["birth_date"].token_field
    decades = {tokens.token(field, f"X{d}") for d in range(190, 210)}
    untouched = ContactTokenSet.objects.get(pk=first).tokens
    assert not decades & set(untouched)


def test_migration_records_the_old_layout_only_where_contacts_exist(postgres, admin):
    migration = importlib.import_module("contacts.migrations.0009_token_index_state")
    migration.record_layout(django_apps, None)
    assert TokenIndexState.objects.get().version == 2
    services.contacts_bulk_upsert(rows=[{"email": "a@example.org"}], actor=admin)
    migration.record_layout(django_apps, None)
    assert TokenIndexState.objects.get().version == 1


def test_a_conjunction_tests_the_fewest_tokens_first(postgres):
    rules = {
        "all": [
            {"field": "age", "op": "gte", "value": 50},
            {"field": "zip3", "op": "in", "value": ["021", "022", "024"]},
            {"field": "condition", "op": "eq", "value": "E11"},
        ]
    }
    ctx = segments.Context(today=dt.date(2026, 12, 7), now=segments.context().now)
    q = segments.compile_rules(rules, ctx)
    sizes = [len(child[1]) for child in q.children]
    assert sizes == [1, 3, 94]
    sql = str(ContactTokenSet.objects.filter(segments._on_token_sets(q)).query)
    assert sql.count("&&") == 3


@pytest.mark.parametrize("every", [4, 0])
def test_reindex_vacuums_the_token_sets_between_batches(transactional_db, born, every):
    """On PostgreSQL the reindex frees the rewritten rows' old versions every
    ``--vacuum-every`` contacts (outside its batch transactions), so later batches reuse
    that space instead of doubling the table, and ends with VACUUM (ANALYZE)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        call_command("contacts_reindex", batch=2, vacuum_every=every, stdout=io.StringIO())
    vacuums = [q["sql"] for q in captured.captured_queries if q["sql"].startswith("VACUUM")]
    table = connection.ops.quote_name(ContactTokenSet._meta.db_table)
    between = len(BIRTHS) // every if every else 0
    assert vacuums == [f"VACUUM {table}"] * between + [f"VACUUM (ANALYZE) {table}"]
