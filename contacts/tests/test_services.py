"""Contact writes: validation, idempotent upsert, token rewrite, consent and suppression history."""

import datetime as dt

import pytest
from django.db import transaction

from contacts import attributes, segments, selectors, services, tokens
from contacts.models import Consent, Contact, ContactTokenSet, Suppression
from luxmail.models import AuditEvent

pytestmark = [pytest.mark.django_db]


def test_normalization():
    assert attributes.normalize_email("  Alice.B@Exämple.ORG ") == (
        "alice.b@xn--exmple-cua.org",
        "xn--exmple-cua.org",
    )
    assert attributes.normalize_icd10("conditions", " e119 ") == "E11.9"
    assert attributes.normalize_icd10("conditions", "i10") == "I10"
    assert attributes.normalize_zip(2139) == "02139"
    assert attributes.normalize_zip("02139-1234") == "02139-1234"
    assert attributes.normalize_attribute("sex", "F") == "female"
    assert attributes.normalize_attribute("journey_stage", "At-Risk") == "at_risk"
    assert attributes.normalize_attribute("language", "Spanish") == "es"
    assert attributes.normalize_attribute("birth_date", "05/01/1960") == dt.date(1960, 5, 1)
    assert attributes.normalize_attribute("medications", "Metformin; insulin") == [
        "insulin",
        "Metformin",
    ]
    assert attributes.canonical_number(attributes.parse_decimal("x", "2.50")) == "2.5"
    assert attributes.icd10_prefixes("E11.649") == ["E11", "E11.6", "E11.64", "E11.649"]


@pytest.mark.parametrize(
    ("raw", "lo", "hi", "expected"),
    [
        ("2026-03-01", dt.date(2026, 3, 1), dt.date(2026, 3, 1), ["D2026-03-01"]),
        ("", dt.date(2026, 1, 1), dt.date(2026, 12, 31), ["Y2026"]),
        ("", dt.date(2026, 2, 1), dt.date(2026, 2, 28), ["M2026-02"]),
        (
            "",
            dt.date(2025, 12, 31),
            dt.date(2027, 1, 1),
            ["D2025-12-31", "Y2026", "D2027-01-01"],
        ),
        ("", dt.date(2026, 5, 2), dt.date(2026, 5, 1), []),
    ],
)
def test_date_range_cover_is_minimal(raw, lo, hi, expected):
    assert tokens.date_range_values(lo, hi) == expected


def test_date_range_cover_is_exact():
    lo, hi = dt.date(1999, 11, 17), dt.date(2003, 2, 3)
    covered = set()
    for value in tokens.date_range_values(lo, hi):
        level, text = value[0], value[1:]
        if level == "D":
            covered.add(dt.date.fromisoformat(text))
        else:
            year = int(text[:4])
            months = [int(text[5:7])] if level == "M" else range(1, 13)
            for month in months:
                day = dt.date(year, month, 1)
                while day.month == month:
                    covered.add(day)
                    day += dt.timedelta(days=1)
    expected = {lo + dt.timedelta(days=i) for i in range((hi - lo).days + 1)}
    assert covered == expected


def test_bulk_upsert_reports_every_row_error_and_writes_nothing(admin):
    rows = [
        {"email": "good@example.org", "birth_date": "1970-01-01"},
        {"email": "not-an-address"},
        {"email": "x@example.org", "birth_date": "31/31/1999", "conditions": "diabetes"},
        {"email": "GOOD@example.org"},
        {"email": "y@example.org", "favourite_colour": "blue"},
    ]
    result = services.contacts_bulk_upsert(rows=rows, actor=admin, first_row_number=2)
    messages = [(e.row, e.field, e.message) for e in result.errors]
    assert (3, "email", "Email: not a valid address (missing @).") in messages
    assert (4, "birth_date", "Date of birth: not a date (use YYYY-MM-DD or MM/DD/YYYY).") in (
        messages
    )
    assert (
        4,
        "conditions",
        "Conditions (ICD-10): not an ICD-10 code (expected a form such as E11.9 or I10).",
    ) in messages
    assert (5, "email", "Duplicate: the same email address is on row 2.") in messages
    assert (6, "favourite_colour", "Unknown field 'favourite_colour'.") in messages
    assert Contact.objects.count() == 0
    # Messages never echo the offending value (it may be PHI).
    assert all("31/31/1999" not in e.message and "diabetes" not in e.message for e in result.errors)


def test_dry_run_counts_without_writing(admin):
    services.contact_create(data={"email": "a@example.org"}, actor=admin)
    result = services.contacts_bulk_upsert(
        rows=[{"email": "a@example.org"}, {"email": "b@example.org"}], actor=admin, dry_run=True
    )
    assert (result.created, result.updated, result.ok) == (1, 1, True)
    assert Contact.objects.count() == 1


def test_reimport_changes_nothing(admin):
    rows = [
        {
            "email": f"p{i}@example.org",
            "first_name": "Pat",
            "conditions": "E11.9;I10",
            "birth_date": "1960-02-29",
            "zip_code": "02139",
        }
        for i in range(5)
    ]
    first = services.contacts_bulk_upsert(rows=rows, actor=admin)
    assert first.created == 5
    before = {c.pk: (c.updated_at, bytes(c.email)) for c in Contact.objects.all()}
    tokens_before = dict(ContactTokenSet.objects.values_list("contact_id", "tokens"))
    again = services.contacts_bulk_upsert(rows=rows, actor=admin)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 5)
    assert {c.pk: (c.updated_at, bytes(c.email)) for c in Contact.objects.all()} == before
    assert dict(ContactTokenSet.objects.values_list("contact_id", "tokens")) == tokens_before


def test_upsert_merges_and_blank_keeps_values(admin):
    contact = services.contact_create(
        data={"email": "m@example.org", "first_name": "Mia", "conditions": "E11.9"}, actor=admin
    )
    result = services.contacts_bulk_upsert(
        rows=[{"email": "m@example.org", "first_name": "", "zip_code": "10001"}], actor=admin
    )
    assert result.updated == 1
    phi = selectors.contact_phi(contact=contact, actor=admin)
    assert (phi["first_name"], phi["conditions"], phi["zip_code"]) == ("Mia", ["E11.9"], "10001")


def test_tokens_are_rewritten_in_the_same_transaction(admin):
    contact = services.contact_create(
        data={"email": "t@example.org", "conditions": "E11.9"}, actor=admin
    )
    diabetic = {"field": "condition", "op": "eq", "value": "E11"}
    asthmatic = {"field": "condition", "op": "eq", "value": "J45"}
    assert segments.matching(diabetic).filter(pk=contact.pk).exists()

    with transaction.atomic():
        services.contact_update(contact=contact, data={"conditions": "J45.909"}, actor=admin)
        # Inside the transaction the tokens already follow the new profile …
        assert segments.matching(asthmatic).filter(pk=contact.pk).exists()
        assert not segments.matching(diabetic).filter(pk=contact.pk).exists()
        transaction.set_rollback(True)
    # … and a rollback restores profile and tokens together.
    assert segments.matching(diabetic).filter(pk=contact.pk).exists()
    assert not segments.matching(asthmatic).filter(pk=contact.pk).exists()
    phi = selectors.contact_phi(contact=contact, actor=admin)
    assert phi["conditions"] == ["E11.9"]


def test_update_clears_and_refuses_taken_email(admin):
    a = services.contact_create(data={"email": "a@example.org", "zip_code": "02139"}, actor=admin)
    services.contact_create(data={"email": "b@example.org"}, actor=admin)
    with pytest.raises(services.ContactExists):
        services.contact_update(contact=a, data={"email": "B@example.org"}, actor=admin)
    services.contact_update(contact=a, data={"zip_code": None}, actor=admin)
    assert not segments.matching({"field": "zip", "op": "exists"}).filter(pk=a.pk).exists()
    event = AuditEvent.objects.filter(action="contact.update").latest("id")
    assert event.details == {"fields": ["zip_code"]}


def test_create_refuses_duplicates_and_external_id_clash(admin):
    services.contact_create(data={"email": "a@example.org", "external_id": "crm-1"}, actor=admin)
    with pytest.raises(services.ContactExists):
        services.contact_create(data={"email": "A@EXAMPLE.ORG"}, actor=admin)
    with pytest.raises(services.ContactInvalid) as error:
        services.contact_create(
            data={"email": "b@example.org", "external_id": "crm-1"}, actor=admin
        )
    assert error.value.errors[0].field == "external_id"


def test_consent_history_is_kept(admin):
    contact = services.contact_create(data={"email": "c@example.org"}, actor=admin)
    services.consent_grant(
        contact=contact, purpose="marketing", source="web_form", evidence_ref="form-1", actor=admin
    )
    assert selectors.consent_present(contact=contact, purpose="marketing")
    assert services.consent_revoke(contact=contact, purpose="marketing", actor=admin) == 1
    assert services.consent_revoke(contact=contact, purpose="marketing", actor=admin) == 0
    assert not selectors.consent_present(contact=contact, purpose="marketing")
    services.consent_grant(contact=contact, purpose="marketing", source="paper", actor=admin)
    history = list(selectors.contact_consents(contact=contact))
    assert len(history) == 2
    assert [c.revoked_at is None for c in history] == [True, False]
    assert Consent.objects.get(evidence_ref="form-1").revoked_by == admin
    with pytest.raises(services.ConsentError, match="expiry must be after"):
        services.consent_grant(
            contact=contact,
            purpose="marketing",
            source="paper",
            actor=admin,
            expires_at=history[0].granted_at - dt.timedelta(days=1),
        )


def test_suppression_add_remove_keeps_history_and_audits(admin):
    contact = services.contact_create(data={"email": "s@example.org"}, actor=admin)
    row, created = services.suppression_add(
        email="S@example.org", reason="hard_bounce", actor=admin
    )
    assert created
    assert services.suppression_add(email="s@example.org", reason="manual", actor=admin) == (
        row,
        False,
    )
    contact.refresh_from_db()
    assert contact.status == "bounced"
    assert selectors.is_suppressed(contact=contact)
    with pytest.raises(services.SuppressionError, match="why"):
        services.suppression_remove(suppression=row, actor=admin, note=" ")
    services.suppression_remove(suppression=row, actor=admin, note="mailbox fixed")
    contact.refresh_from_db()
    assert contact.status == "active"
    assert not selectors.is_suppressed(contact=contact)
    assert Suppression.objects.count() == 1
    actions = list(
        AuditEvent.objects.filter(action__startswith="suppression.").values_list(
            "action", flat=True
        )
    )
    assert sorted(actions) == ["suppression.add", "suppression.remove"]
    services.suppression_add(contact=contact, reason="manual", actor=admin)
    assert Suppression.objects.count() == 2


def test_segment_validation_messages(admin):
    services.contact_list_create(name="Known", actor=admin)
    cases = [
        ({"all": []}, "rules: the 'all' group is empty; add a condition or remove it"),
        (
            {"all": [{"field": "conditon", "op": "eq", "value": "E11"}]},
            "all[0]: unknown field 'conditon'",
        ),
        (
            {"all": [{"field": "sex", "op": "gte", "value": "female"}]},
            "all[0]: operator 'gte' does not apply to sex (choice); use one of eq, ne, in, "
            "not_in, exists",
        ),
        (
            {"all": [{"field": "age", "op": "gte", "value": 500}]},
            "all[0]: Age: an age must be between 0 and 130",
        ),
        (
            {"any": [{"field": "condition", "op": "eq", "value": "diabetes"}]},
            "any[0]: Condition (ICD-10): not an ICD-10 code",
        ),
        (
            {"all": [{"not": {"any": [{"field": "list", "op": "in", "value": [999]}]}}]},
            "all[0].not.any[0]: Member of list: there is no list with id 999",
        ),
        (
            {
                "all": [
                    {"field": "last_visit", "op": "between", "value": ["2024-02-01", "2024-01-01"]}
                ]
            },
            "all[0]: Last visit: the first date must not be after the second",
        ),
        (
            {"all": [{"field": "last_visit", "op": "within_last_days", "value": -3}]},
            "all[0]: Last visit: the number of days must be between 0 and 54750",
        ),
    ]
    for rules, message in cases:
        with pytest.raises(segments.SegmentRuleError) as error:
            services.segment_create(name="S", rules=rules, actor=admin)
        assert message in str(error.value), (rules, str(error.value))


def test_segment_count_is_audited_without_phi(admin):
    services.contact_create(data={"email": "a@example.org", "conditions": "E11.9"}, actor=admin)
    segment = services.segment_create(
        name="Diabetes", rules={"field": "condition", "op": "eq", "value": "e11"}, actor=admin
    )
    assert segment.rules == {"all": [{"field": "condition", "op": "eq", "value": "E11"}]}
    assert services.segment_count(segment=segment, actor=admin) == 1
    event = AuditEvent.objects.filter(action="segment.count").latest("id")
    assert event.details == {"segment": segment.pk, "count": 1}
    segment.refresh_from_db()
    assert segment.last_count == 1


def test_custom_field_in_use_cannot_be_deleted(admin):
    field = services.custom_field_create(
        key="program", label="Program", kind="choice", choices=["A", "B"], actor=admin
    )
    segment = services.segment_create(
        name="In A", rules={"field": "custom.program", "op": "eq", "value": "a"}, actor=admin
    )
    assert segment.rules["all"][0]["value"] == "A"
    with pytest.raises(services.CustomFieldError, match="uses this field"):
        services.custom_field_delete(custom_field=field, actor=admin)
    with pytest.raises(services.CustomFieldError, match="added but not removed"):
        services.custom_field_update(custom_field=field, choices=["A"], actor=admin)
    services.segment_delete(segment=segment, actor=admin)
    services.custom_field_delete(custom_field=field, actor=admin)


def test_list_membership_is_idempotent(admin):
    contact = services.contact_create(data={"email": "l@example.org"}, actor=admin)
    members = services.contact_list_create(name="VIP", actor=admin)
    assert (
        services.list_members_add(contact_list=members, contact_ids=[contact.pk], actor=admin) == 1
    )
    assert (
        services.list_members_add(contact_list=members, contact_ids=[contact.pk], actor=admin) == 0
    )
    assert segments.matching({"field": "list", "op": "eq", "value": members.pk}).count() == 1
    with pytest.raises(services.ListError):
        services.contact_list_create(name="vip", actor=admin)
    assert (
        services.list_members_remove(contact_list=members, contact_ids=[contact.pk], actor=admin)
        == 1
    )


def test_masking():
    assert selectors.mask_email("alice@example.org") == "a***@example.org"
    assert selectors.mask_name("John") == "J***"
    assert selectors.mask_name(None) == ""


def test_condition_registry_is_an_extension_point(admin):
    """Reporting plugs engagement conditions in like this (here: "in list named X")."""
    from django.db.models import Q

    from contacts.models import ListMembership

    vip = services.contact_list_create(name="VIP", actor=admin)
    inside = services.contact_create(data={"email": "in@example.org"}, actor=admin)
    services.contact_create(data={"email": "out@example.org"}, actor=admin)
    services.list_members_add(contact_list=vip, contact_ids=[inside.pk], actor=admin)

    def validate(op, value):
        if not isinstance(value, str) or not value:
            raise segments.RuleValueError("give a list name")
        return value

    def compile_(op, value, ctx):
        q = Q(pk__in=ListMembership.objects.filter(contact_list__name=value).values("contact_id"))
        return ~q if op == "ne" else q

    kind = segments.ConditionKind(
        field="in_named_list",
        label="In named list",
        value_type="text",
        ops=("eq", "ne"),
        validate=validate,
        compile=compile_,
        group="Engagement",
        phi=False,
    )
    segments.register(kind)
    try:
        rules = {"all": [{"field": "in_named_list", "op": "eq", "value": "VIP"}]}
        assert list(segments.matching(rules).values_list("pk", flat=True)) == [inside.pk]
        assert segments.count({"not": rules}) == 1
        with pytest.raises(segments.SegmentRuleError, match="give a list name"):
            segments.validate({"all": [{"field": "in_named_list", "op": "eq", "value": ""}]})
        assert "in_named_list" in {k.field for k in segments.available_kinds()}
    finally:
        segments.unregister("in_named_list")


def test_segment_sample_is_masked_and_audited(admin):
    services.contact_create(
        data={"email": "zoe@example.org", "first_name": "Zoe", "conditions": "E11.9"}, actor=admin
    )
    services.contact_create(data={"email": "no@example.org"}, actor=admin)
    sample = selectors.segment_sample(
        rules={"field": "condition", "op": "eq", "value": "E11"}, actor=admin, size=5
    )
    assert [(s["email"], s["first_name"]) for s in sample] == [("z***@example.org", "Z***")]
    event = AuditEvent.objects.filter(action="phi.access").latest("id")
    assert event.details == {"purpose": "contact.masked_display", "contacts": 1}
