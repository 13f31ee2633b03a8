"""A/B tests end to end (issue #19 item 5): variants sent to a seeded random test
share, the winner chosen on **human** clicks (a link scanner clicking every message of
the other variant must not decide it) and sent to the rest of the audience."""

from __future__ import annotations

import datetime as dt
import email
import email.policy

import pytest
from django.utils import timezone

from campaigns import services
from campaigns.models import ABTest, ABTestState, Campaign, CampaignStatus, Message
from campaigns.selectors import audience_queryset
from campaigns.sending import delivery
from campaigns.services import abtests as abtest_services
from campaigns.services.abtests import VariantSpec
from campaigns.services.errors import CampaignError, TransitionError
from campaigns.tests.conftest import admin, postgres, sink  # noqa: F401 - fixtures
from campaigns.tests.factories import make_campaign, make_contacts
from luxmail import org
from reporting import abtests, buffer
from reporting.tests.helpers import built_html, drain

pytestmark = [pytest.mark.postgres, pytest.mark.smtp, pytest.mark.django_db]


def _click(message_id: int, campaign_id: int, when: dt.datetime, *, ip: str) -> None:
    buffer.append(
        {
            "k": "c",
            "m": message_id,
            "c": campaign_id,
            "t": when.timestamp(),
            "ip": ip,
            "ua": (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
                "(KHTML, like Gecko) Version/17.0 Safari/605.1.15"
            ),
            "l": 1,
        }
    )


def _send_all(campaign_id: int) -> None:
    for _ in range(20):
        if not delivery.send_batch(campaign_id=campaign_id, limit=50).claimed:
            break
    services.campaign_finish_if_done(campaign_id=campaign_id)


def _subjects(relay, start: int = 0) -> dict[str, str]:
    received = {}
    for mail in relay.messages[start:]:
        parsed = email.message_from_bytes(mail.data, policy=email.policy.default)
        received[mail.rcpt_tos[0]] = str(parsed["Subject"])
    return received


def _configured(actor, n: int = 40, **options) -> ABTest:
    contacts = make_contacts(n, prefix=f"ab{timezone.now().timestamp()}")
    campaign = make_campaign(contact_ids=contacts, actor=actor, subject="Flu season")
    settings = {"test_percent": 50, "metric": "click_rate", "wait_hours": 1, "min_sample": 5}
    settings.update(options)
    return abtest_services.abtest_configure(
        campaign=campaign,
        actor=actor,
        variants=[
            VariantSpec(subject="Flu shots are here"),
            VariantSpec(subject="Book your flu shot, {{ contact.first_name }}"),
        ],
        **settings,
    )


def test_winner_on_human_clicks_goes_to_the_rest(tracking_buffer, postgres, sink, admin):  # noqa: F811
    test = _configured(admin)
    parent = test.campaign
    test = abtest_services.abtest_start(test=test, actor=admin)
    a, b = list(test.variants.order_by("label"))
    assert (a.recipients, b.recipients) == (10, 10)
    assert test.state == ABTestState.TESTING and test.seed is not None
    # The split is the recorded seeded shuffle of the audience.
    audience = list(audience_queryset(campaign=parent, phi=False).values_list("id", flat=True))
    shares = abtest_services.split_shares(audience, seed=test.seed, percent=50, variants=2)
    for variant, share in zip((a, b), shares, strict=True):
        members = Message.objects.filter(campaign=variant.campaign).values_list(
            "contact_id", flat=True
        )
        assert sorted(members) == sorted(share)
    parent.refresh_from_db()
    assert parent.status == CampaignStatus.SCHEDULED
    with pytest.raises(TransitionError):  # the rest only gets the winner
        services.campaign_start(campaign=parent, actor=admin)

    _send_all(a.campaign_id)
    _send_all(b.campaign_id)
    subjects = _subjects(sink)
    assert len(subjects) == 20
    assert sum(s.startswith("Book your flu shot, ") for s in subjects.values()) == 10
    assert sum(s == "Flu shots are here" for s in subjects.values()) == 10

    # A link scanner clicks every message of A within seconds; two people click B.
    sent = timezone.now() - dt.timedelta(hours=2)
    a_ids = list(Message.objects.filter(campaign=a.campaign).values_list("id", flat=True))
    b_ids = list(Message.objects.filter(campaign=b.campaign).values_list("id", flat=True))
    Message.objects.filter(id__in=a_ids + b_ids).update(sending_at=sent, finished_at=sent)
    built_html(Campaign.objects.get(pk=a.campaign_id), a_ids[0])
    built_html(Campaign.objects.get(pk=b.campaign_id), b_ids[0])
    for message_id in a_ids:
        _click(message_id, a.campaign_id, sent + dt.timedelta(seconds=2), ip="198.51.100.7")
    _click(b_ids[0], b.campaign_id, sent + dt.timedelta(minutes=30), ip="198.51.100.8")
    _click(b_ids[1], b.campaign_id, sent + dt.timedelta(minutes=50), ip="198.51.100.9")
    drain()
    # Even when the organization's reports count automated events, the test does not.
    org.org_settings_update(actor=None, exclude_automated_events=False)

    assert abtests.abtests_decide_due() == 0  # the wait is not over
    ABTest.objects.filter(pk=test.pk).update(decide_after=timezone.now() - dt.timedelta(minutes=1))
    result = abtests.evaluate(ABTest.objects.get(pk=test.pk))
    by_label = {r.variant.label: r for r in result.results}
    assert (by_label["A"].clicked, by_label["B"].clicked) == (0, 2)
    assert by_label["B"].click_rate == pytest.approx(0.2)
    assert result.p_value is not None and 0 < result.p_value < 1

    assert abtests.abtests_decide_due() == 1
    test.refresh_from_db()
    assert test.state == ABTestState.WINNER_SENT and test.winner_id == b.pk
    assert test.p_value == pytest.approx(result.p_value)
    parent.refresh_from_db()
    assert parent.status == CampaignStatus.SENDING and parent.recipients == 20
    assert parent.frozen_subject == "Book your flu shot, {{ contact.first_name }}"

    before = len(sink.messages)
    _send_all(parent.pk)
    rest = _subjects(sink, before)
    assert len(rest) == 20 and not set(rest) & set(subjects)
    assert all(s.startswith("Book your flu shot, ") for s in rest.values())
    parent.refresh_from_db()
    assert parent.status == CampaignStatus.SENT


def test_small_sample_waits_and_approval_mode_needs_a_person(
    tracking_buffer,
    postgres,  # noqa: F811 (the campaigns fixtures imported above)
    sink,  # noqa: F811
    admin,  # noqa: F811
):
    test = _configured(admin, n=10, min_sample=50, auto_send_winner=False)
    test = abtest_services.abtest_start(test=test, actor=admin)
    ABTest.objects.filter(pk=test.pk).update(decide_after=timezone.now() - dt.timedelta(minutes=1))
    assert abtests.abtests_decide_due() == 0
    test.refresh_from_db()
    assert test.state == ABTestState.TESTING and "Waiting for 50" in test.decision_note

    # A person picks B after the wait (approval mode): sent to the rest.
    b = test.variants.get(label="B")
    count = abtest_services.abtest_send_winner(test=test, actor=admin, variant=b)
    assert count == 5  # 50 % of 10 had a variant
    test.refresh_from_db()
    assert test.state == ABTestState.WINNER_SENT
    with pytest.raises(TransitionError):
        abtest_services.abtest_send_winner(test=test, actor=admin, variant=b)


def test_configuration_is_checked(admin):  # noqa: F811
    contacts = make_contacts(4, prefix=f"abc{timezone.now().timestamp()}")
    campaign = make_campaign(contact_ids=contacts, actor=admin)
    with pytest.raises(CampaignError, match="2 to 4"):
        abtest_services.abtest_configure(campaign=campaign, actor=admin, variants=[VariantSpec()])
    with pytest.raises(CampaignError, match="PHI"):
        abtest_services.abtest_configure(
            campaign=campaign,
            actor=admin,
            variants=[VariantSpec(), VariantSpec(subject="About your {{ phi.conditions }}")],
        )
    with pytest.raises(CampaignError, match="Variant subject"):
        abtest_services.abtest_configure(
            campaign=campaign, actor=admin, variants=[VariantSpec(), VariantSpec(subject="{{ x")]
        )


def test_two_proportion_p_value():
    assert abtests.two_proportion_p_value(20, 100, 10, 100) == pytest.approx(0.0477, abs=1e-3)
    assert abtests.two_proportion_p_value(0, 10, 0, 10) is None
    assert abtests.two_proportion_p_value(1, 0, 1, 10) is None
    assert abtests.two_proportion_p_value(5, 10, 5, 10) == pytest.approx(1.0)
