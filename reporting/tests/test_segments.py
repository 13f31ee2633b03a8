"""Engagement conditions in segments: opened / clicked / did not open campaign X."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from campaigns.models import Message
from contacts import segments
from luxmail import org
from reporting import buffer
from reporting.tests.helpers import APPLE_MPP, BROWSER, built_html, drain, started_campaign

pytestmark = pytest.mark.django_db


def _entry(kind, message_id, campaign_id, when, *, link=None, ua=BROWSER):
    entry = {
        "k": kind,
        "m": message_id,
        "c": campaign_id,
        "t": when.timestamp(),
        "ip": "198.51.100.7",
        "ua": ua,
    }
    if link is not None:
        entry["l"] = link
    buffer.append(entry)


@pytest.fixture
def engaged(tracking_buffer):
    campaign, ids = started_campaign(5)
    built_html(campaign, ids[0])
    sent = timezone.now() - dt.timedelta(hours=2)
    Message.objects.filter(id__in=ids[:4]).update(
        state="sent", channel="tls", sending_at=sent, finished_at=sent
    )
    Message.objects.filter(id=ids[4]).update(state="bounced")
    later = sent + dt.timedelta(minutes=30)
    _entry("o", ids[0], campaign.pk, later)  # human open
    _entry("o", ids[1], campaign.pk, later, ua=APPLE_MPP)  # only Apple's proxy
    _entry("c", ids[2], campaign.pk, later, link=1)  # human click (so: opened)
    drain()
    contacts = dict(Message.objects.filter(id__in=ids).values_list("id", "contact_id"))
    return campaign, [contacts[i] for i in ids]


def _matching(rules):
    return set(segments.matching(rules).values_list("id", flat=True))


def test_opened_and_clicked_count_human_events_by_default(engaged):
    campaign, contacts = engaged
    org.org_settings_update(actor=None, exclude_automated_events=True, count_unknown_events=True)
    assert _matching({"field": "opened_campaign", "op": "eq", "value": campaign.pk}) == {
        contacts[0],
        contacts[2],
    }
    assert _matching({"field": "clicked_campaign", "op": "eq", "value": campaign.pk}) == {
        contacts[2]
    }
    # Received (delivered, not bounced) and no open that counts: Apple's proxy is not one.
    assert _matching({"field": "not_opened_campaign", "op": "eq", "value": campaign.pk}) == {
        contacts[1],
        contacts[3],
    }
    assert segments.count({"field": "opened_campaign", "op": "ne", "value": campaign.pk}) == len(
        _matching({"field": "opened_campaign", "op": "ne", "value": campaign.pk})
    )
    assert contacts[0] not in _matching(
        {"field": "opened_campaign", "op": "ne", "value": campaign.pk}
    )


def test_counting_automated_events_follows_the_org_setting(engaged):
    campaign, contacts = engaged
    org.org_settings_update(actor=None, exclude_automated_events=False)
    assert _matching({"field": "opened_campaign", "op": "in", "value": [campaign.pk]}) == {
        contacts[0],
        contacts[1],
        contacts[2],
    }
    assert _matching({"field": "not_opened_campaign", "op": "eq", "value": campaign.pk}) == {
        contacts[3]
    }


def test_engagement_conditions_combine_with_others_and_validate(engaged):
    campaign, contacts = engaged
    rules = {
        "all": [
            {"field": "opened_campaign", "op": "eq", "value": str(campaign.pk)},
            {"not": {"field": "clicked_campaign", "op": "eq", "value": campaign.pk}},
        ]
    }
    assert segments.validate(rules)["all"][0]["value"] == campaign.pk
    assert _matching(rules) == {contacts[0]}
    with pytest.raises(segments.SegmentRuleError, match="no campaign with id 999999"):
        segments.validate({"field": "opened_campaign", "op": "eq", "value": 999999})
    with pytest.raises(segments.SegmentRuleError, match="campaign id"):
        segments.validate({"field": "clicked_campaign", "op": "eq", "value": "flu"})
    with pytest.raises(segments.SegmentRuleError):
        segments.validate({"field": "not_opened_campaign", "op": "ne", "value": campaign.pk})
    fields = {kind.field: kind for kind in segments.available_kinds()}
    assert fields["opened_campaign"].group == "Engagement" and not fields["opened_campaign"].phi
