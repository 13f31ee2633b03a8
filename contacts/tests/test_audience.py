"""Send audiences: unsubscribed, bounced, complained, suppressed and unconsented never appear."""

import datetime as dt

import pytest
from django.utils import timezone

from contacts import selectors, services
from contacts.models import Consent, Contact

pytestmark = [pytest.mark.django_db]


def _contact(admin, email, **extra):
    return services.contact_create(
        data={"email": email, "conditions": "E11.9", **extra}, actor=admin
    )


@pytest.fixture
def world(admin):
    people = {
        "ok": _contact(admin, "ok@example.org"),
        "ok_phi": _contact(admin, "okphi@example.org"),
        "unsubscribed": _contact(admin, "u@example.org", status="unsubscribed"),
        "bounced": _contact(admin, "b@example.org", status="bounced"),
        "complained": _contact(admin, "c@example.org", status="complained"),
        "suppressed": _contact(admin, "s@example.org"),
        "no_consent": _contact(admin, "n@example.org"),
        "revoked": _contact(admin, "r@example.org"),
        "expired": _contact(admin, "e@example.org"),
        "future": _contact(admin, "f@example.org"),
        "not_in_segment": services.contact_create(data={"email": "x@example.org"}, actor=admin),
        "excluded": _contact(admin, "ex@example.org"),
    }
    now = timezone.now()
    for name, contact in people.items():
        if name in {"no_consent"}:
            continue
        services.consent_grant(contact=contact, purpose="marketing", source="web_form", actor=admin)
    services.consent_grant(
        contact=people["ok_phi"], purpose="phi_marketing", source="paper", actor=admin
    )
    services.consent_revoke(contact=people["revoked"], purpose="marketing", actor=admin)
    Consent.objects.filter(contact=people["expired"]).update(
        granted_at=now - dt.timedelta(days=30), expires_at=now - dt.timedelta(days=1)
    )
    Consent.objects.filter(contact=people["future"]).update(granted_at=now + dt.timedelta(days=1))
    services.suppression_add(email="S@Example.org", reason="manual", actor=admin)
    segment = services.segment_create(
        name="Diabetics",
        rules={"all": [{"field": "condition", "op": "eq", "value": "E11"}]},
        actor=admin,
    )
    exclusion = services.contact_list_create(name="Do not mail", actor=admin)
    services.list_members_add(
        contact_list=exclusion, contact_ids=[people["excluded"].pk], actor=admin
    )
    return people, segment, exclusion


def _names(people, queryset):
    ids = set(queryset.values_list("pk", flat=True))
    return {name for name, contact in people.items() if contact.pk in ids}


def test_marketing_audience_keeps_only_eligible(world):
    people, segment, exclusion = world
    audience = selectors.send_audience(
        purpose=selectors.consent_purpose_for(phi_template=False),
        segments_in=[segment],
        exclude_lists=[exclusion],
    )
    assert _names(people, audience) == {"ok", "ok_phi"}


def test_phi_template_needs_the_hipaa_authorization(world):
    people, segment, _ = world
    audience = selectors.send_audience(
        purpose=selectors.consent_purpose_for(phi_template=True), segments_in=[segment]
    )
    assert _names(people, audience) == {"ok_phi"}


def test_lists_and_segments_union_and_status_changes_apply_at_once(world, admin):
    people, segment, exclusion = world
    audience = selectors.send_audience(
        purpose="marketing", segments_in=[segment], lists_in=[exclusion]
    )
    assert "excluded" in _names(people, audience)
    services.suppression_add(contact=people["ok"], reason="unsubscribe", actor=admin)
    people["ok"].refresh_from_db()
    assert people["ok"].status == "unsubscribed"
    assert "ok" not in _names(people, audience.all())


def test_audience_embeds_in_one_insert_select(world):
    _, segment, _ = world
    audience = selectors.send_audience(purpose="marketing", segments_in=[segment])
    sql, _params = audience.values("pk").query.sql_with_params()
    assert sql.upper().startswith("SELECT")
    assert Contact.objects.filter(pk__in=audience.values("pk")).count() == 3  # ok, ok_phi, excluded


def test_empty_audience_without_segments_or_lists(world):
    assert not selectors.send_audience(purpose="marketing").exists()
