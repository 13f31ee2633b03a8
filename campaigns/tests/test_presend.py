"""The pre-send check against a real local DNS server and HTTP server: SPF, DKIM,
DMARC, links, content heuristics, the scheduling guard and the Admin override."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from campaigns import services
from campaigns.content import footer
from campaigns.models import CampaignStatus, PresendOverride
from campaigns.presend import content, dnsauth, links
from campaigns.presend.items import Verdict
from campaigns.tests.factories import make_campaign, make_contacts
from campaigns.tests.presend_fixtures import authenticated_sender, dns_server, web_server
from luxmail import conf, roles
from luxmail.api.services import api_key_create
from luxmail.models import AuditEvent

__all__ = ["dns_server", "web_server"]  # fixtures used by name below

pytestmark = pytest.mark.django_db

BODY = (
    "<p>Dear {{ contact.first_name }}, flu shots are available at our clinic from Monday. "
    "Book a time that suits you; walk-ins are welcome every weekday morning and on "
    "Saturdays before noon.</p>"
)


def _items(check: services.presend.PresendCheck) -> dict[str, Verdict]:
    return {item.key: item.verdict for item in check.items}


def test_dns_records_published_and_matching_pass(dns_server, admin) -> None:
    sender = authenticated_sender(dns_server, admin)
    assert dnsauth.check_spf(sender, "").verdict == Verdict.PASS
    assert dnsauth.check_dkim(sender, "").verdict == Verdict.PASS
    assert dnsauth.check_dmarc(sender, "").verdict == Verdict.PASS


def test_missing_dmarc_spf_and_a_stale_dkim_key_fail(dns_server, admin) -> None:
    sender = authenticated_sender(dns_server, admin, dmarc=False, spf=False)
    domain = sender.dkim_domain
    dns_server.records[f"{sender.dkim_selector}._domainkey.{domain}"] = [
        "v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAoldkey"
    ]
    dmarc = dnsauth.check_dmarc(sender, "/fix/")
    assert dmarc.verdict == Verdict.FAIL and f"_dmarc.{domain}" in dmarc.detail
    assert dmarc.fix_url == "/fix/"
    assert dnsauth.check_spf(sender, "").verdict == Verdict.FAIL
    assert "not this identity's key" in dnsauth.check_dkim(sender, "").detail


def test_dmarc_of_the_organizational_domain_counts_and_p_none_warns(dns_server, admin) -> None:
    sender = authenticated_sender(dns_server, admin, dmarc=False)
    sender.from_email = f"news@mail.{sender.dkim_domain}"
    dns_server.records[f"_dmarc.{sender.dkim_domain}"] = ["v=DMARC1; p=none"]
    item = dnsauth.check_dmarc(sender, "")
    assert item.verdict == Verdict.WARN and "p=none" in item.detail


def test_the_organizational_domain_follows_the_public_suffix_list(dns_server, admin) -> None:
    # Not the last two labels: co.uk is a public suffix, example.co.uk the organization.
    assert dnsauth.organizational_domain("news.mail.example.co.uk") == "example.co.uk"
    assert dnsauth.organizational_domain("clinic.example.com") == "example.com"
    assert dnsauth.organizational_domain("co.uk") == "co.uk"
    sender = authenticated_sender(dns_server, admin, dmarc=False)
    sender.from_email = "news@mail.example.co.uk"
    dns_server.records["_dmarc.example.co.uk"] = ["v=DMARC1; p=reject"]
    dns_server.records["_dmarc.co.uk"] = ["v=DMARC1; p=none"]
    item = dnsauth.check_dmarc(sender, "")
    assert item.verdict == Verdict.PASS and "example.co.uk" in item.detail


def test_an_unanswering_resolver_warns_instead_of_failing(settings, admin) -> None:
    import socket

    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # bound, never answers
    silent.bind(("127.0.0.1", 0))
    settings.LUXMAIL_DNS_RESOLVER = f"127.0.0.1:{silent.getsockname()[1]}"
    try:
        sender = services.sender_create(
            name="Silent", from_name="C", from_email="a@silent-dns.test", actor=admin
        )
        item = dnsauth.check_dmarc(sender, "")
    finally:
        silent.close()
    assert item.verdict == Verdict.WARN and "Could not be checked" in item.detail


def test_hostile_txt_record_is_bounded(dns_server, admin) -> None:
    sender = authenticated_sender(dns_server, admin)
    dns_server.records[sender.dkim_domain] = ["v=spf1 " + "include:x.test " * 400 + "-all"]
    records = dnsauth.txt_records(sender.dkim_domain)
    assert len(records[0]) <= dnsauth.MAX_TXT_BYTES


def test_link_probe_follows_redirects_and_reports_broken_links(web_server) -> None:
    assert links.probe(f"{web_server}/ok").ok
    assert links.probe(f"{web_server}/moved").ok
    assert links.probe(f"{web_server}/head-not-allowed").ok
    gone = links.probe(f"{web_server}/gone")
    assert not gone.ok and "HTTP 404" in gone.detail
    assert "does not exist" in links.probe("https://no-such-host.invalid/x").detail


def test_private_addresses_are_not_probed_by_default(settings) -> None:
    settings.LUXMAIL_LINK_CHECK = "http"
    result = links.probe("http://127.0.0.1:9/admin")
    assert not result.checked and "private" in result.detail


def test_links_in_is_bounded_and_skips_other_schemes() -> None:
    html = "".join(f'<a href="https://e.test/{i}">x</a>' for i in range(500))
    html += '<a href="mailto:a@b.test">m</a><a href="javascript:alert(1)">j</a>'
    found = links.links_in(html)
    assert len(found) == links.MAX_LINKS and all(u.startswith("https://") for u in found)


def test_check_items_for_a_campaign_with_a_broken_link(dns_server, web_server, admin) -> None:
    sender = authenticated_sender(dns_server, admin)
    campaign = make_campaign(
        contact_ids=make_contacts(3),
        actor=admin,
        sender=sender,
        subject="Flu shots this week",
        html=BODY + f'<a href="{web_server}/ok">Book</a> <a href="{web_server}/gone">Map</a>'
        '<img src="https://e.test/logo.png">',
    )
    check = services.presend_check(campaign=campaign)  # eager Celery: the worker ran
    items = _items(check)
    assert items["links"] == Verdict.FAIL
    links_item = next(i for i in check.items if i.key == "links")
    assert any("/gone" in line for line in links_item.lines)
    assert not any("/ok " in line for line in links_item.lines)
    assert items["alt"] == Verdict.WARN
    assert items["footer"] == Verdict.PASS  # the compliance footer is added
    assert items["spf"] == items["dkim"] == items["dmarc"] == Verdict.PASS
    assert items["subject"] == Verdict.PASS and items["spam"] == Verdict.PASS
    assert check.blocked


def test_link_checking_off_says_not_checked(settings, admin) -> None:
    settings.LUXMAIL_LINK_CHECK = "off"
    campaign = make_campaign(contact_ids=make_contacts(1), actor=admin, html=BODY)
    items = _items(services.presend_check(campaign=campaign))
    assert items["links"] == Verdict.NOT_CHECKED
    assert items["dns"] == Verdict.NOT_CHECKED


def test_content_heuristics() -> None:
    huge = "<p>" + "x" * (content.GMAIL_CLIP_BYTES + 10) + "</p>"
    assert content.check_size(huge, "").verdict == Verdict.WARN
    assert content.check_size("<p>hi</p>", "").verdict == Verdict.PASS
    assert content.check_subject("", "").verdict == Verdict.FAIL
    loud = content.check_subject("FREE FLU SHOTS NOW!!!", "")
    assert loud.verdict == Verdict.WARN and "capital" in loud.detail
    assert content.check_subject("x" * 120, "").verdict == Verdict.WARN
    spam = content.check_spam_words(subject="Act now", text="word " * 50, fix_url="")
    assert spam.verdict == Verdict.WARN and "act now" in spam.detail
    pixel = '<img src="p.gif" width="1" height="1"><img src="a.png" alt="">'
    assert content.check_images(pixel, "").verdict == Verdict.PASS


def test_failing_check_blocks_scheduling_until_an_admin_overrides(
    dns_server, web_server, admin, make_user
) -> None:
    sender = authenticated_sender(dns_server, admin, dmarc=False)
    campaign = make_campaign(contact_ids=make_contacts(2), actor=admin, sender=sender, html=BODY)
    with pytest.raises(services.PresendBlocked, match="DMARC"):
        services.presend_require(campaign=campaign)

    marketer = make_user(roles.MARKETER)
    with pytest.raises(services.CampaignError, match="Only an Admin"):
        services.presend_override(campaign=campaign, actor=marketer, note="please")
    with pytest.raises(services.CampaignError, match="Say why"):
        services.presend_override(campaign=campaign, actor=admin, note="   ")

    services.presend_override(
        campaign=campaign, actor=admin, note="DMARC record is being published today"
    )
    services.presend_require(campaign=campaign)  # no longer raises
    event = AuditEvent.objects.get(action="campaign.presend_override")
    assert event.details == {"items": ["dmarc"], "note": "DMARC record is being published today"}

    # A new failure (a broken link) is not covered by the earlier override.
    template = campaign.template
    services.template_update(
        template=template,
        actor=admin,
        html=footer.footer_insert(BODY + f'<a href="{web_server}/gone">x</a>'),
    )
    services.presend_require(campaign=campaign)  # not probed yet: "checking" does not block
    campaign.refresh_from_db()
    services.presend_check(campaign=campaign)  # the review page queues the (eager) probe
    with pytest.raises(services.PresendBlocked, match="Links"):
        services.presend_require(campaign=campaign)
    assert PresendOverride.objects.count() == 1
    assert campaign.status == CampaignStatus.DRAFT


def test_api_schedule_is_refused_while_the_check_fails(dns_server, admin) -> None:
    sender = authenticated_sender(dns_server, admin, dmarc=False)
    campaign = make_campaign(contact_ids=make_contacts(1), actor=admin, sender=sender, html=BODY)
    issued = api_key_create(name="presend", scopes=["campaigns:send"], actor=admin)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
    response = client.post(f"/api/v1/campaigns/{campaign.pk}/schedule/", {}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "presend-check-failed"


def test_dns_resolver_setting_forms(settings) -> None:

    settings.LUXMAIL_DNS_RESOLVER = "127.0.0.1:5353"
    assert conf.dns_resolver() == ("127.0.0.1", 5353) and conf.dns_check()
    settings.LUXMAIL_DNS_RESOLVER = "10.0.0.53"
    assert conf.dns_resolver() == ("10.0.0.53", 53)
    settings.LUXMAIL_DNS_RESOLVER = "[::1]:53"
    assert conf.dns_resolver() == ("::1", 53)
    settings.LUXMAIL_DNS_RESOLVER = ""
    assert conf.dns_resolver() is None and conf.dns_check()
    settings.LUXMAIL_DNS_RESOLVER = "off"
    assert not conf.dns_check()
