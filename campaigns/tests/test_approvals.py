"""PHI approval (issue 17): a PHI campaign is scheduled only after a Compliance Officer,
not its author, approved exactly what it reads; edits withdraw the approval; the UI and
the API refuse with a clear message; everything is audited."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from campaigns import services
from campaigns.content import footer
from campaigns.models import ApprovalState, CampaignStatus
from campaigns.services import approvals
from campaigns.tests.factories import make_campaign, make_contacts
from contacts.services.segments import segment_create, segment_update
from luxmail import roles
from luxmail.api.services import api_key_create
from luxmail.models import AuditEvent
from luxmail.testing import verify_session

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

PHI_HTML = (
    "<p>Dear {{ contact.first_name }}, next visit {{ phi.next_appointment|default('-') }}.</p>"
    "{% if phi.age %}<p>{{ phi.age }}</p>{% endif %}"
)
LATER = dt.timedelta(days=2)


@pytest.fixture
def author(make_user):
    return make_user(roles.PHI_MARKETER)


@pytest.fixture
def officer(make_user):
    return make_user(roles.COMPLIANCE_OFFICER)


def _phi_campaign(author, **fields):
    prefix = f"p{uuid.uuid4().hex[:6]}"
    ids = make_contacts(3, prefix=prefix, consent=("marketing", "phi_marketing"))
    return make_campaign(contact_ids=ids, actor=author, html=PHI_HTML, approved=False, **fields)


def _schedule(campaign, actor):
    return services.campaign_schedule(campaign=campaign, actor=actor, at=timezone.now() + LATER)


def test_phi_campaign_needs_an_officers_approval_before_scheduling(
    postgres, author, officer
) -> None:
    campaign = _phi_campaign(author)
    use = approvals.phi_use(campaign)
    assert use.template_fields == ["phi.age", "phi.next_appointment"]
    assert use.needs_approval
    with pytest.raises(approvals.ApprovalRequired, match="Compliance Officer must approve"):
        _schedule(campaign, author)

    approval = services.approval_request(campaign=campaign, actor=author)
    assert approval.recipients == 3 and approval.secure_policy == campaign.secure_policy
    with pytest.raises(approvals.ApprovalRequired, match="awaiting approval"):
        _schedule(campaign, author)
    services.approval_decide(campaign=campaign, actor=officer, approve=True, note="ok")
    assert _schedule(campaign, author).status == CampaignStatus.SCHEDULED

    actions = list(
        AuditEvent.objects.filter(target_id=str(campaign.uuid)).values_list("action", flat=True)
    )
    assert {"campaign.approval_request", "campaign.approve", "campaign.schedule"} <= set(actions)
    request_event = AuditEvent.objects.get(action="campaign.approval_request")
    assert request_event.details["template_phi_fields"] == ["phi.age", "phi.next_appointment"]


def test_campaign_without_phi_needs_no_approval(postgres, author) -> None:
    ids = make_contacts(2)
    campaign = make_campaign(contact_ids=ids, actor=author, approved=False)
    assert not approvals.phi_use(campaign).needs_approval
    assert _schedule(campaign, author).status == CampaignStatus.SCHEDULED
    with pytest.raises(services.CampaignError, match="needs no approval"):
        services.approval_request(campaign=campaign, actor=author)


def test_only_a_compliance_officer_who_did_not_write_it_may_approve(
    postgres, make_user, author, officer
) -> None:
    campaign = _phi_campaign(author)
    services.approval_request(campaign=campaign, actor=author)
    for outsider in (make_user(roles.ADMIN, is_superuser=True), make_user(roles.PHI_MARKETER)):
        with pytest.raises(approvals.ApprovalForbidden, match="Only a Compliance Officer"):
            services.approval_decide(campaign=campaign, actor=outsider, approve=True)
    # An officer who wrote the campaign cannot approve their own work.
    own = _phi_campaign(officer)
    services.approval_request(campaign=own, actor=officer)
    with pytest.raises(approvals.ApprovalForbidden, match="another Compliance"):
        services.approval_decide(campaign=own, actor=officer, approve=True)
    services.approval_decide(campaign=campaign, actor=officer, approve=False, note="too broad")
    assert approvals.current_approval(campaign).state == ApprovalState.REJECTED
    with pytest.raises(approvals.ApprovalRequired):
        _schedule(campaign, author)


def test_edits_to_template_audience_or_sender_withdraw_the_approval(
    postgres, author, officer
) -> None:
    segment = segment_create(
        name="Over 50", rules={"all": [{"field": "age", "op": "gte", "value": 50}]}, actor=author
    )
    campaign = _phi_campaign(author)
    services.campaign_update(campaign=campaign, actor=author, segments=[segment])
    assert approvals.phi_use(campaign).audience_fields == ["Age"]

    def approve():
        services.approval_request(campaign=campaign, actor=author)
        services.approval_decide(campaign=campaign, actor=officer, approve=True)

    approve()
    services.template_update(
        template=campaign.template, actor=author, html=footer.footer_insert(PHI_HTML + "<p>x</p>")
    )
    assert approvals.current_approval(campaign).state == ApprovalState.WITHDRAWN
    with pytest.raises(approvals.ApprovalRequired):
        _schedule(campaign, author)

    approve()
    segment_update(
        segment=segment, actor=author, rules={"all": [{"field": "age", "op": "gte", "value": 40}]}
    )
    assert approvals.current_approval(campaign).state == ApprovalState.WITHDRAWN

    approve()
    services.campaign_update(campaign=campaign, actor=author, secure_policy="portal_only")
    withdrawn = approvals.current_approval(campaign)
    assert withdrawn.state == ApprovalState.WITHDRAWN and "changed" in withdrawn.withdrawn_reason
    assert AuditEvent.objects.filter(action="campaign.approval_withdraw").count() >= 3


def test_a_change_behind_the_services_back_is_caught_at_schedule_time(
    postgres, author, officer
) -> None:
    campaign = _phi_campaign(author)
    services.approval_request(campaign=campaign, actor=author)
    services.approval_decide(campaign=campaign, actor=officer, approve=True)
    # A bulk update fires no signal and calls no service: only the hash notices.
    type(campaign.template).objects.filter(pk=campaign.template_id).update(subject="Changed")
    with pytest.raises(approvals.ApprovalRequired):
        _schedule(campaign, author)
    assert approvals.current_approval(campaign).state == ApprovalState.WITHDRAWN
    assert AuditEvent.objects.filter(action="campaign.approval_withdraw").exists()


def test_a_scheduled_campaign_whose_approval_was_withdrawn_does_not_start(
    postgres, author, officer
) -> None:
    campaign = _phi_campaign(author)
    services.approval_request(campaign=campaign, actor=author)
    services.approval_decide(campaign=campaign, actor=officer, approve=True)
    _schedule(campaign, author)
    # Behind the services' back (no signal): caught when its time comes.
    type(campaign.template).objects.filter(pk=campaign.template_id).update(subject="New")
    type(campaign).objects.filter(pk=campaign.pk).update(scheduled_at=timezone.now())
    assert services.campaigns_start_due() == 0
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DRAFT
    failed = AuditEvent.objects.get(action="campaign.start_failed")
    assert "approval" in failed.details["reason"]


def test_an_edit_sends_a_scheduled_phi_campaign_back_to_draft(postgres, author, officer) -> None:
    campaign = _phi_campaign(author)
    services.approval_request(campaign=campaign, actor=author)
    services.approval_decide(campaign=campaign, actor=officer, approve=True)
    _schedule(campaign, author)
    services.template_update(template=campaign.template, actor=author, subject="New subject")
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DRAFT
    withdrawn = AuditEvent.objects.get(action="campaign.approval_withdraw")
    assert withdrawn.details["unscheduled"] is True


def test_api_refuses_with_problem_details_and_walks_the_workflow(postgres, author, officer) -> None:
    campaign = _phi_campaign(author)
    issued = api_key_create(
        name="ehr", scopes=["campaigns:read", "campaigns:write", "campaigns:send"], actor=author
    )
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.secret}")

    refused = api.post(f"/api/v1/campaigns/{campaign.pk}/schedule/", {}, format="json")
    assert refused.status_code == 409
    assert refused["Content-Type"].startswith("application/problem+json")
    body = refused.json()
    assert body["code"] == "approval-required" and "Compliance Officer" in body["detail"]
    assert body["status"] == 409

    shown = api.get(f"/api/v1/campaigns/{campaign.pk}/approval/").json()
    assert shown["needs_approval"] and shown["state"] is None
    assert shown["template_phi_fields"] == ["phi.age", "phi.next_appointment"]
    requested = api.post(f"/api/v1/campaigns/{campaign.pk}/approval/")
    assert requested.status_code == 201 and requested.json()["state"] == "pending"

    # An API key is never a Compliance Officer.
    denied = api.post(
        f"/api/v1/campaigns/{campaign.pk}/approval/decision/", {"approve": True}, format="json"
    )
    assert denied.status_code == 403 and denied.json()["code"] == "approval-forbidden"

    officer_api = APIClient()
    verify_session(officer_api, officer)
    decided = officer_api.post(
        f"/api/v1/campaigns/{campaign.pk}/approval/decision/", {"approve": True}, format="json"
    )
    assert decided.status_code == 200, decided.content
    assert decided.json()["state"] == "approved" and decided.json()["current"]
    at = (timezone.now() + LATER).isoformat()
    scheduled = api.post(f"/api/v1/campaigns/{campaign.pk}/schedule/", {"at": at}, format="json")
    assert scheduled.status_code == 200 and scheduled.json()["status"] == "scheduled"


def test_ui_refuses_and_shows_the_minimum_necessary(
    postgres, staff_client, author, officer
) -> None:
    campaign = _phi_campaign(author)
    marketer = staff_client(roles.PHI_MARKETER)
    review = marketer.get(f"/campaigns/{campaign.pk}/review/").content.decode()
    assert "a Compliance Officer who did not write it must approve it" in review
    response = marketer.post(f"/campaigns/{campaign.pk}/schedule/", {"at": ""}, follow=True)
    assert "Compliance Officer must approve" in response.content.decode()
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DRAFT

    page = marketer.get(f"/campaigns/{campaign.pk}/approval/").content.decode()
    assert "<code>phi.age</code>, <code>phi.next_appointment</code>" in page
    assert 'id="approval-recipients">3' in page
    marketer.post(f"/campaigns/{campaign.pk}/approval/request/")
    # A marketer cannot decide at all (no permission): 403, nothing changes.
    assert (
        marketer.post(
            f"/campaigns/{campaign.pk}/approval/decide/", {"decision": "approve"}
        ).status_code
        == 403
    )
    assert approvals.current_approval(campaign).state == ApprovalState.PENDING
