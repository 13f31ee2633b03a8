"""The demo (``make run``) shows an A/B test whose winner was chosen on human clicks and
sent to the rest, and a campaign scheduled for 09:00 in each patient's time zone."""

from __future__ import annotations

import pytest

from campaigns import abtest_demo
from campaigns import demo as campaigns_demo
from campaigns.models import ABTest, ABTestState, Campaign, CampaignStatus, DeliveryPlan
from campaigns.scheduling import planner
from campaigns.tests.conftest import admin, postgres  # noqa: F401 - fixtures
from contacts import demo as contacts_demo
from reporting import abtests
from reporting import demo as reporting_demo

pytestmark = [pytest.mark.postgres, pytest.mark.smtp, pytest.mark.slow]


def test_demo_ab_test_has_a_human_winner_and_a_local_time_campaign(
    postgres,  # noqa: F811
    admin,  # noqa: F811
    settings,
    tmp_path,
) -> None:
    settings.LUXMAIL_SINK_DIR = tmp_path
    contacts_demo.populate(actor=admin)
    campaigns_demo.populate(actor=admin)
    reporting_demo.populate(actor=admin)
    test = ABTest.objects.get(campaign__name=abtest_demo.ABTEST_CAMPAIGN)
    assert test.state == ABTestState.WINNER_SENT and test.winner.label == "B"
    result = abtests.evaluate(test)
    a, b = result.results
    assert a.clicked < b.clicked and b.click_rate > 0
    assert test.campaign.status != CampaignStatus.SCHEDULED  # the rest got the winner
    local = Campaign.objects.get(name=abtest_demo.LOCAL_TIME_CAMPAIGN)
    assert local.status == CampaignStatus.SCHEDULED
    assert DeliveryPlan.objects.get(campaign=local).by_local_time
    assert sum(n for _, n in planner.planned_curve(local)) > 0
    # Idempotent.
    campaigns_demo.populate(actor=admin)
    reporting_demo.populate(actor=admin)
    assert Campaign.objects.filter(name=abtest_demo.LOCAL_TIME_CAMPAIGN).count() == 1
    assert ABTest.objects.count() == 1
