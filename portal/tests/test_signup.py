"""Sign-up forms, double opt-in, authorizations, ledger, abuse limits and hostile posts
(issue 18). Real PostgreSQL, Redis (rate limits) and an aiosmtpd sink for the mails."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from campaigns.models import Message
from campaigns.sending import delivery
from contacts.models import (
    CORE_ELEMENTS,
    Consent,
    ConsentLedgerEntry,
    Contact,
    ContactPreference,
    SignupSubmission,
)
from contacts.services import authorizations, signup
from luxmail import crypto, roles
from portal.tests.helpers import make_patient, phi_campaign
from portal.tests.signup_helpers import confirm_path, make_form

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.smtp]


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    # Rate-limit windows live in this worker's Redis: each test starts with none used.
    cache.clear()


def _post(form, **overrides):
    data = {
        "email": f"pat.{uuid.uuid4().hex[:8]}@example.test",
        "first_name": "Imogen",
        "last_name": "Haverford",
        "birth_date": "1970-02-03",
        "conditions": "E11.9",
        "marketing": "yes",
        "phi_marketing": "yes",
        "authorization_read": "yes",
        "signature": "Imogen Haverford",
        "lists": [str(form.lists.first().pk)],
        **overrides,
    }
    return Client().post(f"/f/{form.slug}/", data, HTTP_USER_AGENT="pytest-browser/1")


def test_authorization_needs_every_core_element_and_is_immutable_once_used(admin):
    draft = authorizations.authorization_save(
        name="Auth", text="Some text", checklist={"information": True}, actor=admin
    )
    with pytest.raises(signup.SignupError, match="core element"):
        authorizations.authorization_publish(version=draft, actor=admin)
    authorizations.authorization_save(
        version=draft,
        name="Auth",
        text="Full text",
        checklist=dict.fromkeys(CORE_ELEMENTS, True),
        actor=admin,
    )
    authorizations.authorization_publish(version=draft, actor=admin)
    with pytest.raises(signup.SignupError, match="new version"):
        authorizations.authorization_save(
            version=draft, name="Auth", text="Changed", checklist={}, actor=admin
        )
    second = authorizations.authorization_save(name="Auth", text="v2", checklist={}, actor=admin)
    assert second.number == 2


def test_submit_confirm_creates_contact_with_consents_and_ledger(admin, sink):
    form = make_form(admin)
    response = _post(form, email="imogen@example.test")
    assert response.status_code == 200, response.content
    assert b"Check your inbox" in response.content
    assert Contact.objects.count() == 0  # nothing lands before confirmation
    assert len(sink.messages) == 1
    path = confirm_path(sink.messages[0].data)

    # A scanner's GET shows a button and confirms nothing.
    assert Client().get(path).status_code == 200
    assert Contact.objects.count() == 0
    assert SignupSubmission.objects.get().status == "pending"

    done = Client().post(path, HTTP_USER_AGENT="pytest-browser/1")
    assert done.status_code == 200 and b"signed up" in done.content
    contact = Contact.objects.get()
    purposes = set(Consent.objects.filter(contact=contact).values_list("purpose", flat=True))
    assert purposes == {"marketing", "phi_marketing"}
    phi = Consent.objects.get(contact=contact, purpose="phi_marketing")
    assert phi.expires_at is not None and str(form.authorization.uuid) in phi.evidence_ref
    kinds = sorted(
        ConsentLedgerEntry.objects.filter(contact=contact).values_list("kind", flat=True)
    )
    assert kinds == ["confirmation", "grant", "grant"]
    grant = ConsentLedgerEntry.objects.get(contact=contact, purpose="phi_marketing")
    access = crypto.phi_access(actor=None, purpose="test")
    evidence = crypto.reveal(grant, "phi_evidence", access=access)
    assert evidence["signature"] == "Imogen Haverford"
    assert evidence["submitted_user_agent"] == "pytest-browser/1"
    assert grant.authorization_id == form.authorization_id
    assert contact.memberships.count() == 1
    form.authorization.refresh_from_db()
    assert form.authorization.used_at is not None
    assert SignupSubmission.objects.get().phi_payload is None  # PHI now only in the contact
    # Confirming twice changes nothing.
    assert Client().post(path).status_code == 200
    assert Consent.objects.filter(contact=contact).count() == 2


def test_existing_contact_is_updated_through_the_blind_index(admin, sink):
    patient = make_patient("known@example.test", actor=admin)
    form = make_form(admin)
    assert _post(form, email="Known@Example.test", first_name="Rosa").status_code == 200
    Client().post(confirm_path(sink.messages[-1].data))
    assert Contact.objects.count() == 1
    access = crypto.phi_access(actor=None, purpose="test")
    patient.refresh_from_db()
    assert crypto.reveal(patient, "first_name", access=access) == "Rosa"


def test_authorization_block_is_required_for_phi_marketing(admin, sink):
    form = make_form(admin)
    response = _post(form, authorization_read="", signature="")
    assert response.status_code == 400
    body = response.content.decode()
    assert 'role="alert"' in body and 'aria-invalid="true"' in body
    assert "Type your full name" in body
    assert SignupSubmission.objects.count() == 0 and not sink.messages


def test_honeypot_and_mail_limit_answer_like_success(admin, sink, settings):
    form = make_form(admin)
    bot = _post(form, website="http://spam.example")
    assert bot.status_code == 200 and b"Check your inbox" in bot.content
    assert SignupSubmission.objects.count() == 0
    settings.LUXMAIL_SIGNUP_CONFIRMATIONS_PER_DAY = 1
    first = _post(form, email="same@example.test")
    second = _post(form, email="same@example.test")
    assert first.content == second.content  # no hint whether the address is known
    assert SignupSubmission.objects.count() == 1 and len(sink.messages) == 1


def test_rate_limit_per_ip_is_friendly(admin, sink, settings):
    settings.LUXMAIL_SIGNUP_RATE_IP = "2/h"
    form = make_form(admin)
    assert _post(form).status_code == 200
    assert _post(form).status_code == 200
    limited = _post(form)
    assert limited.status_code == 429 and b"Too many" in limited.content


def test_expired_submissions_cannot_confirm_and_are_purged(admin, sink):
    form = make_form(admin)
    _post(form)
    path = confirm_path(sink.messages[0].data)
    SignupSubmission.objects.update(expires_at=timezone.now() - dt.timedelta(minutes=1))
    expired = Client().post(path)
    assert expired.status_code == 410 and b"expired" in expired.content
    assert signup.purge_expired() == 1
    assert SignupSubmission.objects.count() == 0
    assert Client().post(path).status_code == 410


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"email=" + b"a" * 70_000, "application/x-www-form-urlencoded"),
        (b"&".join(b"f%d=1" % i for i in range(2000)), "application/x-www-form-urlencoded"),
        (b"email=%ff%fe%00&first_name=\xff\xfe", "application/x-www-form-urlencoded"),
        (
            b"first_name=" + b"x" * 5000 + b"&email=a@example.test",
            "application/x-www-form-urlencoded",
        ),
        (b"email=a%00b@example.test&marketing=yes", "application/x-www-form-urlencoded"),
        (
            b'--x\r\nContent-Disposition: form-data; name="email"\r\n\r\n\xff\r\n--x--',
            "multipart/form-data; boundary=x",
        ),
        (b"\x00\x01\x02garbage", "application/json"),
    ],
)
def test_hostile_posts_get_a_friendly_error_never_500(admin, body, content_type):
    form = make_form(admin)
    response = Client().generic("POST", f"/f/{form.slug}/", body, content_type=content_type)
    assert response.status_code in (400, 413), response.status_code
    assert b"Traceback" not in response.content
    assert SignupSubmission.objects.count() == 0


def test_only_form_pages_are_framable_by_allowed_origins(admin):
    from contacts.models import SignupSettings

    SignupSettings.objects.create(frame_ancestors="https://www.hospital.example\njavascript:x")
    form = make_form(admin)
    page = Client().get(f"/f/{form.slug}/")
    csp = page["Content-Security-Policy"]
    assert "frame-ancestors 'self' https://www.hospital.example" in csp
    assert "javascript" not in csp and "X-Frame-Options" not in page
    assert "script-src 'self'" in csp
    other = Client().get("/accounts/login/")
    assert "frame-ancestors 'none'" in other["Content-Security-Policy"]
    script = Client().get(f"/f/{form.slug}/embed.js")
    assert script.status_code == 200 and b"iframe" in script.content


@pytest.mark.django_db  # not transactional: the start's on-commit send stays queued
def test_revocation_and_pause_stop_queued_messages(admin, sink):
    stays, revoked, paused = (
        make_patient(f"{name}@example.test", actor=admin) for name in ("stays", "revokes", "pauses")
    )
    campaign = phi_campaign([stays, revoked, paused], actor=admin)
    from campaigns import services

    services.campaign_start(campaign=campaign, actor=admin)
    signup.authorization_revoke(contact=revoked, actor=admin, source="staff", note="phoned in")
    ContactPreference.objects.create(
        contact=paused, paused_until=timezone.now() + dt.timedelta(days=30)
    )
    delivery.send_batch(campaign_id=campaign.pk, limit=50)
    states = dict(Message.objects.filter(campaign=campaign).values_list("contact_id", "state"))
    assert states == {stays.pk: "sent", revoked.pk: "skipped", paused.pk: "skipped"}
    assert ConsentLedgerEntry.objects.filter(contact=revoked, kind="revocation").exists()
    with pytest.raises(signup.SignupError, match="note"):
        signup.authorization_revoke(contact=stays, actor=admin, source="staff", note=" ")


def test_ledger_api_and_contact_page(admin, sink, staff_client):
    from luxmail.api import services as api_services

    form = make_form(admin)
    _post(form, email="ledger@example.test")
    Client().post(confirm_path(sink.messages[0].data))
    contact = Contact.objects.get()
    issued = api_services.api_key_create(
        name="ledger", scopes=["contacts:read", "phi:read"], actor=admin
    )
    client = Client(HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
    rows = client.get(f"/api/v1/contacts/{contact.pk}/consent-ledger/").json()["results"]
    assert {r["kind"] for r in rows} == {"confirmation", "grant"}
    assert any(r["evidence"].get("signature") == "Imogen Haverford" for r in rows)
    plain = api_services.api_key_create(name="plain", scopes=["contacts:read"], actor=admin)
    masked = Client(HTTP_AUTHORIZATION=f"Bearer {plain.secret}")
    rows = masked.get(f"/api/v1/contacts/{contact.pk}/consent-ledger/").json()["results"]
    assert all(r["evidence"] == {} for r in rows)
    page = staff_client(roles.ADMIN).get(f"/contacts/{contact.uuid}/")
    assert page.status_code == 200 and b"Consent ledger" in page.content


def test_demo_shows_a_published_form_with_confirmed_and_pending_signups(admin):
    from portal import signup_demo

    signup_demo.populate(actor=admin)
    signup_demo.populate(actor=admin)  # idempotent
    statuses = sorted(SignupSubmission.objects.values_list("status", flat=True))
    assert statuses == ["confirmed", "confirmed", "pending", "pending"]
    assert Contact.objects.count() == 2
    assert Client().get(f"/f/{signup_demo.SLUG}/").status_code == 200


def test_staff_build_a_form_and_an_authorization(admin, staff_client):
    from contacts.models import AuthorizationVersion, SignupForm

    client = staff_client(roles.ADMIN)
    assert client.get("/signup-forms/").status_code == 200
    response = client.post(
        "/signup-forms/authorizations/new/",
        {"name": "Auth", "text": "Text", **{f"element_{k}": "on" for k in CORE_ELEMENTS}},
    )
    assert response.status_code == 302
    version = AuthorizationVersion.objects.get()
    client.post(f"/signup-forms/authorizations/{version.pk}/publish/")
    version.refresh_from_db()
    assert version.published_at is not None
    data = {
        "name": "Flu",
        "slug": "flu",
        "title": "Flu shots",
        "fields": ["first_name", "birth_date"],
        "marketing_text": "Send me news",
        "request_phi_marketing": "on",
        "authorization": version.pk,
        "thank_you_text": "Thanks",
        "confirmed_text": "Done",
    }
    too_light = client.post("/signup-forms/new/", {**data, "brand_color": "#ffff00"})
    assert too_light.status_code == 200 and b"too light" in too_light.content
    assert client.post("/signup-forms/new/", {**data, "brand_color": "#0b5394"}).status_code == 302
    form = SignupForm.objects.get()
    client.post(f"/signup-forms/{form.pk}/publish/")
    assert Client().get("/f/flu/").status_code == 200
    assert client.get("/signup-forms/").status_code == 200
    # A used version cannot change: saving it creates version 2.
    client.post(
        f"/signup-forms/authorizations/{version.pk}/",
        {"name": "Auth", "text": "Changed", **{f"element_{k}": "on" for k in CORE_ELEMENTS}},
    )
    version.refresh_from_db()
    assert version.text == "Text" and AuthorizationVersion.objects.count() == 2


@pytest.mark.django_db  # not transactional: the start's on-commit send stays queued
def test_portal_channel_preference_moves_email_to_the_portal(admin, sink):
    by_mail, by_portal = (
        make_patient(f"{name}@example.test", actor=admin) for name in ("mail", "portal")
    )
    ContactPreference.objects.create(contact=by_portal, channel="portal")
    campaign = phi_campaign([by_mail, by_portal], actor=admin)
    from campaigns import services

    services.campaign_start(campaign=campaign, actor=admin)
    delivery.send_batch(campaign_id=campaign.pk, limit=50)
    channels = dict(Message.objects.filter(campaign=campaign).values_list("contact_id", "channel"))
    assert channels[by_portal.pk] == "portal"
    assert channels[by_mail.pk] != "portal"


@pytest.mark.django_db  # not transactional: the start's on-commit send stays queued
def test_monthly_digest_only_gets_one_marketing_message_per_30_days(admin, sink):
    monthly = make_patient("monthly@example.test", actor=admin)
    ContactPreference.objects.create(contact=monthly, frequency="monthly")
    from campaigns import services

    first, second = (phi_campaign([monthly], actor=admin) for _ in range(2))
    for campaign in (first, second):
        services.campaign_start(campaign=campaign, actor=admin)
        delivery.send_batch(campaign_id=campaign.pk, limit=50)
    assert Message.objects.get(campaign=first).state == "sent"
    assert Message.objects.get(campaign=second).state == "skipped"
