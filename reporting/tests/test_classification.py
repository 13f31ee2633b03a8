"""Table-driven tests of the event classifier: one row per rule, then sequences.

No database: ``classify`` is pure, so these tests build facts and read verdicts.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from reporting.classification import (
    AGENT_CACHE_SIZE,
    ALL_LINKS_WINDOW_SECONDS,
    LOOKBACK_SECONDS,
    RULESET_VERSION,
    AutomationKind,
    EventFacts,
    Kind,
    Label,
    NetworkKind,
    NetworkMatch,
    PriorEvent,
    Scope,
    Verdict,
    agent_verdict,
    classify,
    label_counts,
    message_engagement,
    prefetch_headers,
)

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # delivery time in the sequence tests

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
IPHONE_MAIL = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148"
)
OUTLOOK = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17928; Pro)"
THUNDERBIRD = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Thunderbird/128.4.0"
CUBOT_PHONE = (
    "Mozilla/5.0 (Linux; Android 10; CUBOT X30) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Mobile Safari/537.36"
)
GOOGLE_PROXY = (
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
)
YAHOO_PROXY = "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html"
GMAIL_PREFETCH = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/42.0.2311.135 Safari/537.36 Edge/12.246 Mozilla/5.0"
)

APPLE = NetworkMatch("172.224.224.0/27", Scope.OPENS, NetworkKind.PRIVACY_PROXY, "apple_mpp")
MIMECAST_BOTH = NetworkMatch("205.139.110.0/24", Scope.BOTH, NetworkKind.GATEWAY, "mimecast")
GATEWAY_CLICKS = NetworkMatch("198.51.100.0/24", Scope.CLICKS, NetworkKind.GATEWAY, "example_gw")
GOOGLE_NET = NetworkMatch("66.249.80.0/20", Scope.OPENS, NetworkKind.MAIL_PROXY, "google")


def facts(kind: str = "open", **overrides) -> EventFacts:
    base = {
        "kind": Kind(kind),
        "occurred_at": T0 + timedelta(hours=1),
        "user_agent": CHROME,
        "ip": "203.0.113.7",
        "seconds_since_delivery": 3600.0,
        "link_index": 0 if kind == "click" else None,
        "link_count": 4,
    }
    base.update(overrides)
    return EventFacts(**base)


# (id, facts, label, reason, device_unknown)
RULES = [
    ("portal read", facts(portal_verified=True), "human", "portal_verified", False),
    ("honeypot", facts("click", is_honeypot=True), "automated", "honeypot", True),
    ("HEAD click", facts("click", method="HEAD"), "automated", "head_request", True),
    ("HEAD open", facts(method="head"), "automated", "head_request", True),
    ("OPTIONS click", facts("click", method="OPTIONS"), "automated", "non_get_method", True),
    ("Purpose: prefetch", facts("click", purpose="prefetch"), "automated", "prefetch_header", True),
    (
        "Sec-Purpose: prefetch;prerender",
        facts("click", sec_purpose="prefetch;prerender"),
        "automated",
        "prefetch_header",
        True,
    ),
    ("X-Moz: prefetch", facts(x_moz="prefetch"), "automated", "prefetch_header", True),
    (
        "X-Purpose: preview",
        facts("click", x_purpose="preview"),
        "automated",
        "prefetch_header",
        True,
    ),
    ("no user agent", facts("click", user_agent=""), "automated", "missing_user_agent", True),
    ("Gmail prefetch", facts(user_agent=GMAIL_PREFETCH), "automated", "gmail_prefetch", True),
    (
        "Barracuda agent",
        facts("click", user_agent="Mozilla/5.0 (compatible; Barracuda Sentinel)"),
        "automated",
        "security_scanner_agent",
        True,
    ),
    (
        "Mimecast agent",
        facts("click", user_agent="Mimecast URL Protect/1.0"),
        "automated",
        "security_scanner_agent",
        True,
    ),
    (
        "Proofpoint agent",
        facts("click", user_agent="Mozilla/5.0 Proofpoint URL Defense"),
        "automated",
        "security_scanner_agent",
        True,
    ),
    (
        "Defender Safe Links agent",
        facts("click", user_agent="Mozilla/5.0 (compatible; SafeLinks)"),
        "automated",
        "security_scanner_agent",
        True,
    ),
    (
        "Cisco IronPort agent",
        facts("click", user_agent="Cisco IronPort URL Scanner"),
        "automated",
        "security_scanner_agent",
        True,
    ),
    (
        "Slack unfurl",
        facts("click", user_agent="Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"),
        "automated",
        "link_preview_agent",
        True,
    ),
    (
        "Teams/Skype preview",
        facts("click", user_agent=f"{CHROME} SkypeUriPreview Preview/0.5"),
        "automated",
        "link_preview_agent",
        True,
    ),
    (
        "headless Chrome",
        facts("click", user_agent=CHROME.replace("Chrome/", "HeadlessChrome/")),
        "automated",
        "headless_browser_agent",
        True,
    ),
    ("curl", facts("click", user_agent="curl/8.5.0"), "automated", "http_library_agent", True),
    (
        "python-requests",
        facts(user_agent="python-requests/2.32.3"),
        "automated",
        "http_library_agent",
        True,
    ),
    (
        "Googlebot",
        facts(
            "click",
            user_agent="Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        ),
        "automated",
        "bot_agent",
        True,
    ),
    (
        "Apple MPP",
        facts(user_agent="Mozilla/5.0", network=APPLE),
        "privacy_proxy",
        "apple_mpp",
        True,
    ),
    (
        "bare Mozilla/5.0 outside Apple's ranges",
        facts(user_agent="Mozilla/5.0"),
        "automated",
        "bare_user_agent",
        True,
    ),
    (
        "bare Mozilla/5.0 click from an Apple range (MPP never clicks)",
        facts("click", user_agent="Mozilla/5.0", network=APPLE),
        "automated",
        "bare_user_agent",
        True,
    ),
    (
        "Private Relay person: full agent from an Apple range",
        facts(user_agent=IPHONE_MAIL, network=APPLE),
        "human",
        "mail_client_agent",
        False,
    ),
    (
        "Google image proxy",
        facts(user_agent=GOOGLE_PROXY),
        "privacy_proxy",
        "google_image_proxy",
        True,
    ),
    (
        "Google image proxy from Google's range, seconds after delivery",
        facts(user_agent=GOOGLE_PROXY, network=GOOGLE_NET, seconds_since_delivery=1.0),
        "privacy_proxy",
        "google_image_proxy",
        True,
    ),
    (
        "Yahoo mail proxy",
        facts(user_agent=YAHOO_PROXY),
        "privacy_proxy",
        "yahoo_mail_proxy",
        True,
    ),
    (
        "image proxy agent clicking",
        facts("click", user_agent=GOOGLE_PROXY),
        "automated",
        "image_proxy_click",
        True,
    ),
    (
        "gateway network, scope both, open",
        facts(network=MIMECAST_BOTH),
        "automated",
        "gateway_network",
        True,
    ),
    (
        "gateway network, scope both, click",
        facts("click", network=MIMECAST_BOTH),
        "automated",
        "gateway_network",
        True,
    ),
    (
        "gateway network scoped to clicks does not judge opens",
        facts(network=GATEWAY_CLICKS),
        "human",
        "no_automation_signal",
        False,
    ),
    (
        "mail proxy network, open without proxy agent",
        facts(user_agent=CHROME, network=GOOGLE_NET),
        "privacy_proxy",
        "mail_proxy_network",
        True,
    ),
    (
        "click 3 s after delivery",
        facts("click", seconds_since_delivery=3.0),
        "automated",
        "click_too_soon",
        True,
    ),
    (
        "click recorded before the delivery was",
        facts("click", seconds_since_delivery=-2.0),
        "automated",
        "click_too_soon",
        True,
    ),
    (
        "open 3 s after delivery is not judged by time",
        facts(seconds_since_delivery=3.0),
        "human",
        "no_automation_signal",
        False,
    ),
    (
        "click with unknown delivery time",
        facts("click", seconds_since_delivery=None),
        "human",
        "no_automation_signal",
        False,
    ),
    ("Chrome click", facts("click"), "human", "no_automation_signal", False),
    ("iPhone Mail open", facts(user_agent=IPHONE_MAIL), "human", "mail_client_agent", False),
    ("Outlook open", facts(user_agent=OUTLOOK), "human", "mail_client_agent", False),
    ("Thunderbird open", facts(user_agent=THUNDERBIRD), "human", "mail_client_agent", False),
    (
        "a phone named CUBOT is not a bot",
        facts("click", user_agent=CUBOT_PHONE),
        "human",
        "no_automation_signal",
        False,
    ),
    (
        "unrecognized agent",
        facts(user_agent="Kolibri/0.9 (KolibriOS; en)"),
        "unknown",
        "unrecognized_agent",
        True,
    ),
]


@pytest.mark.parametrize(
    ("event", "label", "reason", "device_unknown"),
    [row[1:] for row in RULES],
    ids=[row[0] for row in RULES],
)
def test_rule(event, label, reason, device_unknown):
    verdict = classify(event)
    assert (verdict.label.value, verdict.reason) == (label, reason)
    assert verdict.device_unknown is device_unknown
    assert verdict.ruleset_version == RULESET_VERSION


def test_verdicts_carry_vendor_detail():
    assert classify(facts("click", user_agent="Mimecast URL Protect")).detail == "mimecast"
    assert classify(facts(network=MIMECAST_BOTH)).detail == "mimecast"
    assert classify(facts(user_agent="Mozilla/5.0", network=APPLE)).detail == "apple_mpp"


def test_classify_is_pure():
    event = facts("click")
    assert classify(event) == classify(event)


def test_prefetch_headers_come_from_request_meta():
    meta = {"HTTP_SEC_PURPOSE": "prefetch", "HTTP_USER_AGENT": CHROME}
    headers = prefetch_headers(meta)
    assert headers == {"purpose": "", "sec_purpose": "prefetch", "x_moz": "", "x_purpose": ""}
    assert classify(facts("click", **headers)).reason == "prefetch_header"


# --- sequences ----------------------------------------------------------------------------


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def click(seconds: float, link: int | None, *, ip="203.0.113.7", **kw):
    """A click ``seconds`` after delivery, as the endpoint would describe it."""
    kw.setdefault("link_index", link)
    return facts("click", occurred_at=at(seconds), seconds_since_delivery=seconds, ip=ip, **kw)


def prior(
    seconds: float,
    link: int | None,
    *,
    ip="203.0.113.7",
    label="human",
    kind="click",
    event_id=None,
):
    return PriorEvent(
        kind=Kind(kind),
        at=at(seconds),
        ip=ip,
        label=Label(label),
        link_index=link,
        event_id=event_id,
    )


SEQUENCES = [
    (
        "three different links within seconds",
        click(62, 2, earlier=(prior(60, 0), prior(61, 1))),
        "automated",
        "rapid_multi_link",
    ),
    (
        "two different links within seconds is still a person",
        click(61, 1, earlier=(prior(60, 0),)),
        "human",
        "no_automation_signal",
    ),
    (
        "the same link three times is a person double-clicking",
        click(62, 0, earlier=(prior(60, 0), prior(61, 0))),
        "human",
        "no_automation_signal",
    ),
    (
        "three links over a minute is a person reading",
        click(120, 2, earlier=(prior(30, 0), prior(75, 1))),
        "human",
        "no_automation_signal",
    ),
    (
        "every link of the message within two minutes",
        click(110, 3, earlier=(prior(20, 0), prior(50, 1), prior(80, 2))),
        "automated",
        "all_links_clicked",
    ),
    (
        "every link, but spread over hours",
        click(4 * 3600, 3, earlier=(prior(600, 0), prior(3600, 1), prior(7200, 2))),
        "human",
        "no_automation_signal",
    ),
    (
        "all links rule needs at least three links",
        click(40, 1, link_count=2, earlier=(prior(20, 0),)),
        "human",
        "no_automation_signal",
    ),
    (
        "clicks from three addresses within seconds",
        click(
            33,
            0,
            ip="192.0.2.3",
            earlier=(prior(31, 0, ip="192.0.2.1"), prior(32, 0, ip="192.0.2.2")),
        ),
        "automated",
        "multi_ip_burst",
    ),
    (
        "opens from three addresses within seconds",
        facts(
            occurred_at=at(33),
            ip="192.0.2.3",
            earlier=(
                prior(31, None, ip="192.0.2.1", kind="open"),
                prior(32, None, ip="192.0.2.2", kind="open"),
            ),
        ),
        "automated",
        "multi_ip_burst",
    ),
    (
        "phone on IPv6 then IPv4: two addresses is a person",
        click(40, 0, ip="198.51.100.20", earlier=(prior(38, 0, ip="2001:db8::20"),)),
        "human",
        "no_automation_signal",
    ),
    (
        "Gmail proxy opens from many Google addresses stay privacy_proxy",
        facts(
            occurred_at=at(33),
            user_agent=GOOGLE_PROXY,
            ip="66.249.84.3",
            earlier=(
                prior(31, None, ip="66.249.84.1", kind="open"),
                prior(32, None, ip="66.249.84.2", kind="open"),
            ),
        ),
        "privacy_proxy",
        "google_image_proxy",
    ),
]


@pytest.mark.parametrize(
    ("event", "label", "reason"), [row[1:] for row in SEQUENCES], ids=[row[0] for row in SEQUENCES]
)
def test_sequence_rule(event, label, reason):
    verdict = classify(event)
    assert (verdict.label.value, verdict.reason) == (label, reason)


def scanner_sweep(start: float, ip: str = "205.139.110.9") -> tuple[PriorEvent, ...]:
    """A gateway clicking all four links one second apart, each labelled automated."""
    return tuple(prior(start + n, n, ip=ip, label="automated", event_id=100 + n) for n in range(4))


HUMAN_AFTER_BOT = [
    (
        "person clicks two hours after a scanner swept every link",
        click(2 * 3600, 0, earlier=()),  # the sweep is outside the look-back window
    ),
    (
        "person clicks a minute after a scanner swept every link from its own network",
        click(65, 1, earlier=scanner_sweep(5)),
    ),
    (
        "person clicks the link the scanner clicked last, seconds later, from home",
        click(12, 3, earlier=scanner_sweep(5)),
    ),
    (
        "person clicks hours after a scanner hit the honeypot",
        click(3 * 3600, 2, earlier=()),
    ),
    (
        "person clicks from the same address a scanner used hours ago",
        click(3 * 3600, 0, ip="205.139.110.9", earlier=()),
    ),
]


@pytest.mark.parametrize(
    "event", [row[1] for row in HUMAN_AFTER_BOT], ids=[row[0] for row in HUMAN_AFTER_BOT]
)
def test_human_after_bot_is_human(event):
    verdict = classify(event)
    assert verdict.label is Label.HUMAN, verdict
    assert verdict.implicates == ()


def test_the_scanner_itself_stays_automated_while_the_person_does_not():
    sweep = scanner_sweep(5)
    # The scanner's own fifth request (same address) continues its sweep.
    scanner_again = click(12, 0, ip="205.139.110.9", earlier=sweep)
    assert classify(scanner_again).label is Label.AUTOMATED
    person = click(12, 0, earlier=sweep)
    assert classify(person).label is Label.HUMAN


def test_sweep_implicates_the_earlier_clicks_it_exposes():
    earlier = (
        prior(60, 0, event_id=11),
        prior(61, 1, event_id=12),
        prior(61.5, 1, label="automated", event_id=13),  # already automated: not repeated
        prior(5, 2, event_id=14),  # outside the window: not part of this sweep
    )
    verdict = classify(click(62, 2, earlier=earlier))
    assert verdict.reason == "rapid_multi_link"
    assert verdict.implicates == (11, 12)


def test_honeypot_implicates_clicks_seconds_before_it():
    earlier = (prior(40, 0, event_id=21), prior(41, 1, event_id=22), prior(5, 2, event_id=23))
    verdict = classify(click(43, 0, is_honeypot=True, link_index=None, earlier=earlier))
    assert verdict.reason == "honeypot"
    assert verdict.implicates == (21, 22)


def test_lookback_covers_every_window():
    assert LOOKBACK_SECONDS >= ALL_LINKS_WINDOW_SECONDS


def test_earlier_events_in_the_future_are_ignored():
    # Clock skew between web processes must not turn a later event into evidence.
    event = click(60, 2, earlier=(prior(61, 0), prior(62, 1)))
    assert classify(event).label is Label.HUMAN


def test_verdict_as_dict_has_no_internal_fields():
    verdict = Verdict(Label.HUMAN, "no_automation_signal")
    assert verdict.as_dict() == {
        "label": "human",
        "reason": "no_automation_signal",
        "automation_kind": "",
        "ruleset_version": RULESET_VERSION,
        "device_unknown": False,
    }


# --- message engagement -------------------------------------------------------------------

ENGAGEMENT = [
    ("nothing happened", [], None, None, False),
    ("MPP open only", [("open", "automated")], "automated", None, False),
    (
        "MPP open, then a person clicks: human open",
        [("open", "automated"), ("click", "human")],
        "human",
        "human",
        True,
    ),
    (
        "scanner click without a pixel: automated open and click",
        [("click", "automated")],
        "automated",
        "automated",
        True,
    ),
    (
        "scanner clicks, person opens later",
        [("click", "automated"), ("click", "automated"), ("open", "human")],
        "human",
        "automated",
        False,
    ),
    (
        "scanner sweep then a person clicks",
        [("click", "automated")] * 4 + [("click", "human")],
        "human",
        "human",
        True,
    ),
    ("unknown click, no pixel", [("click", "unknown")], "unknown", "unknown", True),
    ("portal read", [("open", "human")], "human", None, False),
    (
        "human pixel beats later automated click",
        [("open", "human"), ("click", "automated")],
        "human",
        "automated",
        False,
    ),
]


@pytest.mark.parametrize(
    ("events", "open_label", "click_label", "from_click"),
    [row[1:] for row in ENGAGEMENT],
    ids=[row[0] for row in ENGAGEMENT],
)
def test_message_engagement(events, open_label, click_label, from_click):
    engagement = message_engagement(events)
    assert (engagement.open_label and engagement.open_label.value) == open_label
    assert (engagement.click_label and engagement.click_label.value) == click_label
    assert engagement.open_from_click is from_click


def test_engagement_counts_and_flags():
    engagement = message_engagement([("open", "automated"), ("click", "human"), ("click", "human")])
    assert engagement.human_open and engagement.human_click
    # The human click implies a human open, counted once in the totals.
    assert engagement.counts == {"opens_automated": 1, "clicks_human": 2, "opens_human": 1}
    mpp_only = message_engagement([("open", "automated")])
    assert not mpp_only.opened(exclude_automated=True, count_unknown=True)
    assert mpp_only.opened(exclude_automated=False, count_unknown=False)
    unknown = message_engagement([("click", "unknown")])
    assert unknown.clicked(exclude_automated=True, count_unknown=True)
    assert not unknown.clicked(exclude_automated=True, count_unknown=False)


@pytest.mark.parametrize(
    ("label", "exclude", "unknown", "counts"),
    [
        ("human", True, False, True),
        ("human", False, False, True),
        ("automated", True, True, False),
        ("automated", False, False, True),
        ("unknown", True, True, True),
        ("unknown", True, False, False),
        ("unknown", False, False, True),
    ],
)
def test_label_counts(label, exclude, unknown, counts):
    assert label_counts(label, exclude_automated=exclude, count_unknown=unknown) is counts


def test_facts_are_frozen():
    event = facts()
    with pytest.raises(AttributeError):
        event.user_agent = "x"  # type: ignore[misc]
    assert replace(event, user_agent="curl/8").user_agent == "curl/8"


# --- labels and kinds (issue #15) -----------------------------------------------------------

KINDS = [
    ("honeypot", facts("click", is_honeypot=True), AutomationKind.SCANNER),
    ("HEAD", facts("click", method="HEAD"), AutomationKind.SCANNER),
    ("prefetch header", facts("click", sec_purpose="prefetch"), AutomationKind.PREFETCH),
    ("Gmail prefetch", facts(user_agent=GMAIL_PREFETCH), AutomationKind.PREFETCH),
    ("bare agent", facts(user_agent="Mozilla/5.0"), AutomationKind.PREFETCH),
    ("Mimecast", facts("click", user_agent="Mimecast URL Protect/1.0"), AutomationKind.SCANNER),
    (
        "Meta link preview",
        facts(
            "click",
            user_agent="facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        ),
        AutomationKind.LINK_PREVIEW,
    ),
    (
        "Yahoo link preview",
        facts(
            "click",
            user_agent="Mozilla/5.0 (compatible; Yahoo Link Preview; "
            "https://help.yahoo.com/kb/mail/yahoo-link-preview-SLN23615.html)",
        ),
        AutomationKind.LINK_PREVIEW,
    ),
    (
        "Google web preview",
        facts(
            "click",
            user_agent="Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) "
            "AppleWebKit/537.36 (KHTML, like Gecko; Google Web Preview) "
            "Chrome/41.0.2272.118 Mobile Safari/537.36",
        ),
        AutomationKind.LINK_PREVIEW,
    ),
    (
        "headless Chrome",
        facts(
            "click",
            user_agent="Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "HeadlessChrome/131.0.0.0 Safari/537.36",
        ),
        AutomationKind.SCANNER,
    ),
    (
        "crawler (crawlerdetect)",
        facts(user_agent="Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)"),
        AutomationKind.CRAWLER,
    ),
    ("HTTP library", facts("click", user_agent="python-requests/2.32.3"), AutomationKind.CRAWLER),
    ("gateway network", facts("click", network=MIMECAST_BOTH), AutomationKind.SCANNER),
    ("click too soon", facts("click", seconds_since_delivery=2.0), AutomationKind.SCANNER),
    ("image proxy click", facts("click", user_agent=GOOGLE_PROXY), AutomationKind.SCANNER),
]


@pytest.mark.parametrize(("event", "kind"), [row[1:] for row in KINDS], ids=[r[0] for r in KINDS])
def test_automated_verdicts_carry_their_kind(event, kind):
    verdict = classify(event)
    assert verdict.label is Label.AUTOMATED, verdict
    assert verdict.automation_kind == kind.value
    assert verdict.as_dict()["automation_kind"] == kind.value


@pytest.mark.parametrize(
    "event",
    [facts(), facts(user_agent=GOOGLE_PROXY), facts(user_agent="Kolibri/0.9 (KolibriOS; en)")],
    ids=["human", "privacy_proxy", "unknown"],
)
def test_only_automated_verdicts_have_a_kind(event):
    assert classify(event).automation_kind == ""


# Mail clients fetching images themselves: human, never automated or unknown. Agents from
# Matomo's device-detector fixtures (LGPL-3.0) and the clients' own formats (docs/tracking.md).
MAIL_CLIENTS = {
    "Outlook for Windows": OUTLOOK,
    "Outlook 2010 (Word engine)": "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 6.1; WOW64; "
    "Trident/7.0; .NET4.0C; .NET4.0E; Microsoft Outlook 14.0.7113; ms-office; MSOffice 14)",
    "Outlook for Mac": "Microsoft Office Outlook/16.100.824 (Mac OS/15.6.1; Desktop; en-US; "
    "NonAppStore; Apple/Mac16,7)",
    "Apple Mail (macOS WebKit)": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) "
    "AppleWebKit/605.1.15 (KHTML, like Gecko)",
    "Apple Mail (CFNetwork)": "Mail/3731.600.7 CFNetwork/1408.0.4 Darwin/22.5.0",
    "iOS Mail": IPHONE_MAIL,
    "iPad Mail": "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148",
    "Thunderbird": THUNDERBIRD,
    "Samsung Email": "Mozilla/5.0 (Linux; Android 14; SM-S918B Build/UP1A.231005.007; wv) "
    "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/120.0.6099.230 Mobile "
    "Safari/537.36 SamsungEmail/6.1.90.16",
    "Android WebView mail app": "Mozilla/5.0 (Linux; Android 13; VCA-AN00 "
    "Build/HONORVCA-AN00; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 "
    "Chrome/99.0.4844.88 Safari/537.36 mailapp/6.5.3",
}


@pytest.mark.parametrize("agent", MAIL_CLIENTS.values(), ids=MAIL_CLIENTS.keys())
def test_mail_clients_fetching_images_are_human(agent):
    verdict = classify(facts(user_agent=agent))
    assert verdict.label is Label.HUMAN, verdict


@pytest.mark.parametrize("agent", [GOOGLE_PROXY, YAHOO_PROXY], ids=["Gmail", "Yahoo"])
def test_image_proxy_opens_are_privacy_proxy_with_device_unknown(agent):
    verdict = classify(facts(user_agent=agent))
    assert (verdict.label, verdict.device_unknown) == (Label.PRIVACY_PROXY, True)


@pytest.mark.parametrize(
    "agent",
    [
        "Mozilla/5.0 (compatible; Barracuda Sentinel)",
        "Mimecast URL Protect/1.0",
        "Mozilla/5.0 Proofpoint URL Defense",
        "Mozilla/5.0 (compatible; SafeLinks)",
        "Cisco IronPort URL Scanner",
        "Mozilla/5.0 (compatible; Trend Micro Email Security)",
        "Mozilla/5.0 (compatible; Symantec MessageLabs)",
        "Mozilla/5.0 (compatible; Sophos Email Protection)",
        "Mozilla/5.0 (compatible; Bitdefender Link Checker)",
    ],
)
def test_security_gateways_are_scanners(agent):
    verdict = classify(facts("click", user_agent=agent))
    assert (verdict.reason, verdict.automation_kind) == ("security_scanner_agent", "scanner")


@pytest.mark.parametrize(
    "agent",
    [
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
        "Twitterbot/1.0",
        "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
        "WhatsApp/2.23.20.0 A",
        "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
        "TelegramBot (like TwitterBot)",
        "Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0 MicrosoftPreview/2.0 "
        "+https://aka.ms/MicrosoftPreview",
    ],
)
def test_link_previewers(agent):
    assert classify(facts("click", user_agent=agent)).automation_kind == "link_preview"


def test_an_apple_egress_open_with_a_full_agent_is_a_person():
    # iCloud Private Relay hides a person's address; only MPP's bare agent is the proxy.
    verdict = classify(facts(user_agent=CHROME, network=APPLE))
    assert verdict.label is Label.HUMAN


def test_human_click_after_a_privacy_proxy_open_counts_as_human():
    engagement = message_engagement([("open", "privacy_proxy"), ("click", "human")])
    assert engagement.open_label is Label.HUMAN
    only_proxy = message_engagement([("open", "privacy_proxy"), ("open", "automated")])
    assert only_proxy.open_label is Label.PRIVACY_PROXY


def test_hostile_agents_are_cut_and_cached():
    agent_verdict.cache_clear()
    huge = "Mozilla/5.0 (" + "a;" * 500_000 + ")"
    verdict = classify(facts(user_agent=huge))
    assert verdict.label in (Label.HUMAN, Label.UNKNOWN, Label.AUTOMATED)
    for n in range(AGENT_CACHE_SIZE + 10):
        agent_verdict(f"Agent{n}/1.0 (X11)")
    assert agent_verdict.cache_info().currsize <= AGENT_CACHE_SIZE
