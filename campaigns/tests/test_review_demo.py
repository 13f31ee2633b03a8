"""The review page's demo data: a seed list and a campaign whose pre-send check ran."""

from __future__ import annotations

import pytest

from campaigns import demo, review_demo, services
from campaigns.models import Campaign, PresendOverride
from campaigns.tests.presend_fixtures import dns_server
from contacts import demo as contacts_demo
from luxmail import org

__all__ = ["dns_server"]

pytestmark = [pytest.mark.postgres, pytest.mark.smtp, pytest.mark.slow]


def test_demo_has_a_seed_list_and_a_checked_campaign(
    postgres, admin, settings, tmp_path, dns_server
) -> None:
    settings.LUXMAIL_SINK_DIR = tmp_path
    contacts_demo.populate(actor=admin)
    demo.populate(actor=admin)
    assert org.get_settings().seed_addresses == review_demo.SEED_LIST
    campaign = Campaign.objects.get(name=review_demo.CAMPAIGN)
    assert campaign.preheader == review_demo.PREHEADER
    # The demo domain publishes nothing on the test DNS server: the Admin overrode that.
    override = PresendOverride.objects.get(campaign=campaign)
    assert set(override.items) >= {"spf", "dkim", "dmarc"}
    check = services.presend_check(campaign=campaign, enqueue=False)
    assert {i.key: i.verdict for i in check.items}["alt"] == "warn"
    demo.populate(actor=admin)
    assert PresendOverride.objects.filter(campaign=campaign).count() == 1
