"""Segments on PostgreSQL equal a plain-Python reference, for every operator (hypothesis)."""

import datetime as dt

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contacts import segments, services
from contacts.models import Contact, ContactStatus, InsuranceType, JourneyStage, Sex
from contacts.tests.reference import Person, age, evaluate

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

TODAY = timezone.localdate()
LANGS = ["en", "en-us", "es", "zh", "zh-hant"]
ZIPS = ["02139", "02140", "02201", "10001", "02139-1234"]
CODES = ["E11", "E11.9", "E11.65", "E11.6", "E78.5", "I10", "J45.909"]
MEDS = ["Metformin 500 mg", "metformin  500 MG", "Lisinopril", "Atorvastatin"]
PLANS = ["Aetna HMO", "aetna hmo", "Tufts Select"]
PROVIDERS = ["Dr. Ada Li", "dr. ada  li", "Dr. Bo Chen"]
DOMAINS = ["example.org", "example.com"]
CHOICES = ["Gold", "Silver", "Bronze"]
NUMBERS = ["1", "1.5", "2.0", "2", "-3"]
PURPOSES = ["marketing", "phi_marketing", "transactional"]
HYPOTHESIS = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


def _years_ago(years: int) -> dt.date:
    try:
        return TODAY.replace(year=TODAY.year - years)
    except ValueError:
        return dt.date(TODAY.year - years, 2, 28)


near_today = st.integers(-80, 12).map(lambda d: TODAY + dt.timedelta(days=d))
dates = st.one_of(near_today, st.dates(dt.date(1930, 1, 1), dt.date(2030, 12, 31)))
birth_dates = st.one_of(
    st.builds(
        lambda a, d: _years_ago(a) + dt.timedelta(days=d), st.integers(0, 95), st.integers(-2, 2)
    ).filter(lambda d: d <= TODAY),
    st.sampled_from([dt.date(2000, 2, 29), dt.date(1964, 2, 29), dt.date(1960, 1, 1)]),
)


def maybe(strategy):
    return st.one_of(st.none(), strategy)


people = st.fixed_dictionaries(
    {
        "status": st.sampled_from(ContactStatus.values),
        "domain": st.sampled_from(DOMAINS),
        "created": near_today.filter(lambda d: d <= TODAY),
        "lists": st.sets(st.integers(0, 1)),
        "consents": st.sets(st.sampled_from(PURPOSES)),
        "birth_date": maybe(birth_dates),
        "sex": maybe(st.sampled_from(Sex.values)),
        "language": maybe(st.sampled_from(LANGS)),
        "zip_code": maybe(st.sampled_from(ZIPS)),
        "conditions": maybe(st.lists(st.sampled_from(CODES[1:]), min_size=1, max_size=3)),
        "medications": maybe(st.lists(st.sampled_from(MEDS), min_size=1, max_size=2)),
        "insurance_type": maybe(st.sampled_from(InsuranceType.values)),
        "insurance_plan": maybe(st.sampled_from(PLANS)),
        "primary_provider": maybe(st.sampled_from(PROVIDERS)),
        "last_visit": maybe(dates),
        "next_appointment": maybe(dates),
        "journey_stage": maybe(st.sampled_from(JourneyStage.values)),
        "tier": maybe(st.sampled_from(CHOICES)),
        "score": maybe(st.sampled_from(NUMBERS)),
        "enrolled": maybe(dates),
    }
)
populations = st.lists(people, min_size=1, max_size=14)

VALUES = {
    "sex": st.sampled_from(Sex.values),
    "language": st.sampled_from(LANGS),
    "zip": st.sampled_from([z[:5] for z in ZIPS]),
    "zip3": st.sampled_from(["021", "022", "100", "999"]),
    "condition": st.sampled_from(CODES),
    "medication": st.sampled_from(MEDS),
    "insurance_type": st.sampled_from(InsuranceType.values),
    "insurance_plan": st.sampled_from(PLANS),
    "primary_provider": st.sampled_from(PROVIDERS),
    "journey_stage": st.sampled_from(JourneyStage.values),
    "status": st.sampled_from(ContactStatus.values),
    "email_domain": st.sampled_from(DOMAINS),
    "list": st.integers(0, 1),
    "consent": st.sampled_from(PURPOSES),
    "custom.tier": st.sampled_from(CHOICES),
    "custom.score": st.sampled_from(NUMBERS),
    "age": st.integers(0, 100),
}
DATE_FIELDS = ["birth_date", "last_visit", "next_appointment", "created", "custom.enrolled"]
ALL_FIELDS = [*VALUES, *DATE_FIELDS]
ALL_OPS = sorted(segments.OPERATORS)


def _kind_ops(field):
    kind = segments.kind_for(field)
    if kind is not None:
        return kind.ops
    # Custom fields exist only inside an example; their kinds are known here.
    return segments.DATE_OPS if field == "custom.enrolled" else segments.EQUALITY_OPS


POP_KEY = {
    "birth_date": "birth_date",
    "last_visit": "last_visit",
    "next_appointment": "next_appointment",
    "created": "created",
    "custom.enrolled": "enrolled",
}


def _near(draw, base, population, field):
    """A value taken from the population (±1 day) half of the time: boundaries get hit."""
    key = POP_KEY.get(field, "birth_date")
    known = [p[key] for p in population if p.get(key) is not None]
    if known and draw(st.booleans()):
        return draw(st.sampled_from(known)) + dt.timedelta(days=draw(st.integers(-1, 1)))
    return draw(base)


def _value(draw, field, op, population):
    if op == "exists":
        return draw(st.booleans())
    if op in {"within_last_days", "more_than_days_ago"}:
        day = _near(draw, near_today, population, field)
        return max(0, min(36500, (TODAY - day).days))
    if field in DATE_FIELDS:
        pool = birth_dates if field == "birth_date" else dates
        if op == "between":
            a = _near(draw, pool, population, field)
            b = _near(draw, pool, population, field)
            return [min(a, b).isoformat(), max(a, b).isoformat()]
        return _near(draw, pool, population, field).isoformat()
    strategy = VALUES[field]
    if field == "age":
        ages = [age(p["birth_date"], TODAY) for p in population if p["birth_date"]]
        if ages:
            strategy = st.one_of(
                strategy,
                st.builds(
                    lambda a, k: max(0, min(130, a + k)), st.sampled_from(ages), st.integers(-1, 1)
                ),
            )
    if op == "between":
        return sorted([draw(strategy), draw(strategy)])
    if op in {"in", "not_in"}:
        return draw(st.lists(strategy, min_size=1, max_size=3))
    return draw(strategy)


@st.composite
def conditions_for(draw, op=None, population=()):
    fields = [f for f in ALL_FIELDS if op is None or op in _kind_ops(f)]
    if "age" in fields:
        fields += ["age", "age"]  # the trickiest boundaries (birthdays, 29 February)
    field = draw(st.sampled_from(fields))
    chosen = op or draw(st.sampled_from(_kind_ops(field)))
    return {"field": field, "op": chosen, "value": _value(draw, field, chosen, population)}


def trees(leaf):
    return st.recursive(
        leaf,
        lambda children: st.one_of(
            st.builds(lambda xs: {"all": xs}, st.lists(children, min_size=1, max_size=3)),
            st.builds(lambda xs: {"any": xs}, st.lists(children, min_size=1, max_size=3)),
            st.builds(lambda x: {"not": x}, children),
        ),
        max_leaves=6,
    )


def _resolve_lists(node, list_ids):
    if "field" in node:
        if node["field"] == "list":
            value = node["value"]
            node = {
                **node,
                "value": [list_ids[v] for v in value]
                if isinstance(value, list)
                else list_ids[value],
            }
        return node
    key = next(iter(node))
    inner = node[key]
    if isinstance(inner, list):
        return {key: [_resolve_lists(child, list_ids) for child in inner]}
    return {key: _resolve_lists(inner, list_ids)}


def _populate(actor, population):
    custom = {
        "tier": services.custom_field_create(
            key="tier", label="Tier", kind="choice", choices=CHOICES, actor=actor
        ),
        "score": services.custom_field_create(
            key="score", label="Score", kind="number", phi=False, actor=actor
        ),
        "enrolled": services.custom_field_create(
            key="enrolled", label="Enrolled", kind="date", actor=actor
        ),
    }
    lists = [services.contact_list_create(name=f"L{i}", actor=actor) for i in range(2)]
    rows = []
    for i, person in enumerate(population):
        row = {"email": f"p{i}@{person['domain']}", "status": person["status"]}
        for key in (
            "birth_date",
            "sex",
            "language",
            "zip_code",
            "conditions",
            "medications",
            "insurance_type",
            "insurance_plan",
            "primary_provider",
            "last_visit",
            "next_appointment",
            "journey_stage",
        ):
            if person[key] is not None:
                row[key] = person[key]
        row["custom"] = {k: person[k] for k in custom if person[k] is not None}
        rows.append(row)
    result = services.contacts_bulk_upsert(rows=rows, actor=actor)
    assert result.ok, result.errors
    people_out = []
    for pk, person in zip(result.contact_ids, population, strict=True):
        created = timezone.make_aware(dt.datetime.combine(person["created"], dt.time(12)))
        Contact.objects.filter(pk=pk).update(created_at=created)
        for index in person["lists"]:
            services.list_members_add(contact_list=lists[index], contact_ids=[pk], actor=actor)
        for purpose in person["consents"]:
            services.consent_grant(
                contact=Contact(pk=pk), purpose=purpose, source="staff", actor=actor
            )
        profile = {k: person[k] for k in person if k not in {"tier", "score", "enrolled"}}
        if profile["conditions"]:
            profile["conditions"] = sorted({c.upper() for c in profile["conditions"]})
        people_out.append(
            Person(
                pk=pk,
                status=person["status"],
                domain=person["domain"],
                created=person["created"],
                lists={lists[i].pk for i in person["lists"]},
                consents=set(person["consents"]),
                profile=profile,
                custom={
                    "tier": person["tier"],
                    "score": person["score"],
                    "enrolled": person["enrolled"].isoformat() if person["enrolled"] else None,
                },
            )
        )
    return people_out, [item.pk for item in lists]


CUSTOM_KINDS = {"tier": "choice", "score": "number", "enrolled": "date"}


def _check(actor, population, rules):
    with transaction.atomic():
        people_out, list_ids = _populate(actor, population)
        resolved = _resolve_lists(rules, list_ids)
        got = set(segments.matching(resolved, today=TODAY).values_list("pk", flat=True))
        want = {p.pk for p in people_out if evaluate(resolved, p, TODAY, CUSTOM_KINDS)}
        transaction.set_rollback(True)
    assert got == want, resolved


@pytest.mark.parametrize("op", ALL_OPS)
@HYPOTHESIS
@given(population=populations, data=st.data())
def test_every_operator_matches_the_reference(postgres, admin, op, population, data):
    condition = data.draw(conditions_for(op, population))
    _check(admin, population, {"all": [condition]})


@settings(HYPOTHESIS, max_examples=30)
@given(population=populations, data=st.data())
def test_nested_trees_match_the_reference(postgres, admin, population, data):
    rules = data.draw(trees(conditions_for(population=population)))
    root = rules if "field" not in rules else {"all": [rules]}
    _check(admin, population, root)


@pytest.mark.parametrize(
    ("today", "born", "age"),
    [
        (dt.date(2023, 2, 28), dt.date(2000, 2, 29), 22),
        (dt.date(2023, 3, 1), dt.date(2000, 2, 29), 23),
        (dt.date(2024, 2, 29), dt.date(2000, 2, 29), 24),
        (dt.date(2024, 2, 28), dt.date(2000, 2, 29), 23),
        (dt.date(2026, 1, 1), dt.date(1975, 12, 31), 50),
        (dt.date(2026, 1, 1), dt.date(1976, 1, 1), 50),
        (dt.date(2026, 1, 1), dt.date(1976, 1, 2), 49),
    ],
)
def test_age_boundaries_are_exact(postgres, admin, today, born, age):
    services.contacts_bulk_upsert(
        rows=[{"email": "a@example.org", "birth_date": born}], actor=admin
    )
    for op, value, expected in [
        ("eq", age, 1),
        ("gte", age, 1),
        ("gte", age + 1, 0),
        ("lte", age, 1),
        ("lte", age - 1, 0),
        ("between", [age, age], 1),
        ("ne", age, 0),
    ]:
        rules = {"all": [{"field": "age", "op": op, "value": value}]}
        assert segments.matching(rules, today=today).count() == expected, (op, value)


def test_one_sql_query_per_count(postgres, admin, django_assert_num_queries):
    services.contacts_bulk_upsert(
        rows=[{"email": "a@example.org", "conditions": "E11.9", "zip_code": "02139"}], actor=admin
    )
    rules = segments.validate(
        {
            "all": [
                {"field": "condition", "op": "eq", "value": "E11"},
                {
                    "any": [
                        {"field": "age", "op": "gte", "value": 50},
                        {"field": "zip3", "op": "eq", "value": "021"},
                    ]
                },
                {"not": {"field": "consent", "op": "eq", "value": "marketing"}},
            ]
        }
    )
    ctx = segments.context(TODAY)
    q = segments._compile(rules, ctx)
    with django_assert_num_queries(1):
        assert Contact.objects.filter(q).count() == 1
