"""Classify opens and clicks as human, automated or unknown (docs/tracking.md).

:func:`classify` is a pure function: it looks only at the :class:`EventFacts` it is
given (the request's method, headers, client address and the network range that
address belongs to, the time since delivery, and the message's recent events) and
returns a :class:`Verdict`. Nothing is remembered between calls and nothing is
keyed by contact or address, so a person who clicks two hours after a scanner swept
the links gets a human verdict for that click.

Rules are tried in order; the first that matches decides. Every rule, its reason
code and its source are listed in ``docs/tracking.md``. Change a rule → bump
:data:`RULESET_VERSION`, which is stored with every verdict.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

import ua_parser
from crawlerdetect.crawlerdetect import (
    get_compiled_crawler_regex,
    get_compiled_exclusions_regex,
)

RULESET_VERSION = "2026.12.1"


class Kind(StrEnum):
    OPEN = "open"
    CLICK = "click"


class Label(StrEnum):
    HUMAN = "human"
    AUTOMATED = "automated"
    # A mail image proxy fetched the pixel (Apple Mail Privacy Protection, Gmail's and
    # Yahoo's image proxies): the message reached a real mailbox, but this is no proof
    # that a person read it.
    PRIVACY_PROXY = "privacy_proxy"
    UNKNOWN = "unknown"


class AutomationKind(StrEnum):
    """What sort of machine an automated event came from (``Verdict.automation_kind``)."""

    SCANNER = "scanner"  # security gateways, link scanners, sandboxes, sweeps
    LINK_PREVIEW = "link_preview"  # chat/social/mail apps drawing a link card
    CRAWLER = "crawler"  # search and other crawlers, scripts, HTTP libraries
    PREFETCH = "prefetch"  # fetched ahead of any person (prefetch headers, Gmail prefetch)


class Scope(StrEnum):
    """Which events a network range speaks for."""

    OPENS = "opens"
    CLICKS = "clicks"
    BOTH = "both"

    def covers(self, kind: Kind) -> bool:
        return self is Scope.BOTH or self.value == f"{kind.value}s"


class NetworkKind(StrEnum):
    """What the machines in a network range do with our mail."""

    GATEWAY = "gateway"  # security gateways and link scanners: their events are automated
    PRIVACY_PROXY = "privacy_proxy"  # Apple MPP / iCloud Private Relay egress
    MAIL_PROXY = "mail_proxy"  # image proxies that fetch when a person opens (Gmail, Yahoo)


# --- thresholds (part of the ruleset: change them → bump RULESET_VERSION) ---------------
CLICK_TOO_SOON_SECONDS = 10.0  # a click this soon after delivery is a scanner
MULTI_LINK_WINDOW_SECONDS = 5.0  # several different links clicked within this window...
MULTI_LINK_COUNT = 3  # ...this many distinct links (this click included)
ALL_LINKS_WINDOW_SECONDS = 120.0  # every link of the message clicked within this window
ALL_LINKS_MIN_LINKS = 3  # only for messages with at least this many links
BURST_WINDOW_SECONDS = 10.0  # events of one kind from several addresses within this window...
BURST_IP_COUNT = 3  # ...this many distinct addresses (this event included)
SWEEP_WINDOW_SECONDS = 10.0  # earlier events a honeypot click implicates
# The tracking endpoint needs to load the message's events from this far back only.
LOOKBACK_SECONDS = max(
    MULTI_LINK_WINDOW_SECONDS,
    ALL_LINKS_WINDOW_SECONDS,
    BURST_WINDOW_SECONDS,
    SWEEP_WINDOW_SECONDS,
)


@dataclass(frozen=True, slots=True)
class NetworkMatch:
    """The maintained proxy/gateway range (``ProxyRange``) the client address falls in."""

    cidr: str
    scope: Scope
    kind: NetworkKind
    provider: str
    label: str = ""


@dataclass(frozen=True, slots=True)
class PriorEvent:
    """An earlier open or click of the same message (within :data:`LOOKBACK_SECONDS`)."""

    kind: Kind
    at: datetime
    ip: str
    label: Label
    link_index: int | None = None
    event_id: int | None = None


@dataclass(frozen=True, slots=True)
class EventFacts:
    """Everything the rules look at. The tracking endpoint fills it; no PHI in here.

    ``seconds_since_delivery`` may be negative (the scanner fetched before the delivery
    was recorded) or ``None`` (delivery time unknown: the rule is skipped).
    ``link_count`` counts the message's tracked links without the honeypot.
    """

    kind: Kind
    occurred_at: datetime
    method: str = "GET"
    user_agent: str = ""
    ip: str = ""
    purpose: str = ""  # Purpose header (old Chrome prefetch)
    sec_purpose: str = ""  # Sec-Purpose header (Fetch standard: prefetch / prerender)
    x_moz: str = ""  # X-Moz header (Firefox link prefetch)
    x_purpose: str = ""  # X-Purpose header (Safari previews)
    seconds_since_delivery: float | None = None
    link_index: int | None = None
    is_honeypot: bool = False
    link_count: int = 0
    earlier: tuple[PriorEvent, ...] = ()
    network: NetworkMatch | None = None
    portal_verified: bool = False


@dataclass(frozen=True, slots=True)
class Verdict:
    """The label of one event, why, and under which ruleset.

    ``automation_kind`` is an :class:`AutomationKind` value when the label is
    automated, else ``""``. ``device_unknown`` is true when the request does not
    describe the reader's own device (a proxy fetched it, or a machine did).
    ``implicates`` lists the ids of earlier events of the message that this event
    shows to be part of the same automated sweep; the ingester relabels them
    ``automated`` / ``sweep_member`` (kind :data:`SWEEP_MEMBER_KIND`).
    """

    label: Label
    reason: str
    ruleset_version: str = RULESET_VERSION
    device_unknown: bool = False
    detail: str = ""
    implicates: tuple[int, ...] = ()
    automation_kind: str = ""

    def as_dict(self) -> dict[str, object]:
        return {
            "label": self.label.value,
            "reason": self.reason,
            "automation_kind": self.automation_kind,
            "ruleset_version": self.ruleset_version,
            "device_unknown": self.device_unknown,
        }


def automated(
    reason: str,
    detail: str = "",
    implicates: tuple[int, ...] = (),
    kind: AutomationKind = AutomationKind.SCANNER,
) -> Verdict:
    return Verdict(
        Label.AUTOMATED,
        reason,
        device_unknown=True,
        detail=detail,
        implicates=implicates,
        automation_kind=kind.value,
    )


def privacy_proxy(reason: str, detail: str = "") -> Verdict:
    return Verdict(Label.PRIVACY_PROXY, reason, device_unknown=True, detail=detail)


_UNRECOGNIZED = Verdict(Label.UNKNOWN, "unrecognized_agent", device_unknown=True)

# Reason for earlier events relabelled because a later event exposed the sweep.
SWEEP_MEMBER = "sweep_member"
SWEEP_MEMBER_KIND = AutomationKind.SCANNER.value
PORTAL_VERIFIED = "portal_verified"


# --- the user agent ------------------------------------------------------------------------
# Libraries first (docs/tracking.md, "User agents"): crawlerdetect's crawler list decides
# "is this a bot", uap-core's rules (ua-parser) name the browser or mail client. The
# tables below hold only what the libraries lack or get wrong for mail, each with its
# source; entries are lower-case substrings of the agent.

# Security gateways and link scanners (kind scanner). Vendors rarely document their
# agents; sources per vendor in docs/tracking.md ("Own user-agent rules").
SECURITY_SCANNER_AGENTS: tuple[tuple[str, str], ...] = (
    ("barracuda", "barracuda"),
    ("mimecast", "mimecast"),
    ("proofpoint", "proofpoint"),
    ("urldefense", "proofpoint"),
    ("safelinks", "microsoft_defender"),
    ("microsoft-urlanalyzer", "microsoft_defender"),
    ("ironport", "cisco"),
    ("cisco secure email", "cisco"),
    ("symantec", "symantec"),
    ("messagelabs", "symantec"),
    ("trendmicro", "trend_micro"),
    ("trend micro", "trend_micro"),
    ("sophos", "sophos"),
    ("fireeye", "trellix"),
    ("trellix", "trellix"),
    ("mcafee web gateway", "trellix"),
    ("forcepoint", "forcepoint"),
    ("zscaler", "zscaler"),
    ("fortiguard", "fortinet"),
    ("fortinet", "fortinet"),
    ("checkpoint", "check_point"),
    ("check point", "check_point"),
    ("avanan", "check_point"),
    ("paloalto", "palo_alto"),
    ("palo alto", "palo_alto"),
    ("ironscales", "ironscales"),
    ("vadesecure", "vade"),
    ("hornetsecurity", "hornetsecurity"),
    ("libraesva", "libraesva"),
    ("spamtitan", "titanhq"),
    ("cloudmark", "cloudmark"),
    ("bitdefender", "bitdefender"),
    ("kaspersky", "kaspersky"),
    ("google-safety", "google_safe_browsing"),
    ("virustotal", "virustotal"),
    ("urlscan", "urlscan"),
)
# Link-preview fetchers (kind link_preview): chat, social and mail apps drawing a card.
LINK_PREVIEW_AGENTS: tuple[tuple[str, str], ...] = (
    ("slackbot", "slack"),
    ("slack-imgproxy", "slack"),
    ("facebookexternalhit", "meta"),
    ("facebookcatalog", "meta"),
    ("facebot", "meta"),
    ("meta-externalagent", "meta"),
    ("meta-externalfetcher", "meta"),
    ("whatsapp", "meta"),
    ("twitterbot", "x"),
    ("linkedinbot", "linkedin"),
    ("telegrambot", "telegram"),
    ("discordbot", "discord"),
    ("skypeuripreview", "microsoft_teams_skype"),
    ("microsoftpreview", "microsoft"),
    ("teamsbot", "microsoft_teams_skype"),
    ("microsoft office existence discovery", "microsoft_office"),
    ("bingpreview", "microsoft_bing"),
    ("yahoo link preview", "yahoo"),
    ("google web preview", "google"),
    ("googleother", "google"),
    ("google-pagerenderer", "google"),
    ("iframely", "iframely"),
    ("embedly", "embedly"),
    ("pinterest", "pinterest"),
    ("redditbot", "reddit"),
    ("vkshare", "vk"),
    ("snap url preview", "snap"),
    ("line-poker", "line"),
    ("mastodon", "mastodon"),
    ("applebot", "apple"),
)
# Headless and automated browsers (kind scanner: in mail, sandboxes detonating links).
HEADLESS_AGENTS: tuple[str, ...] = (
    "headlesschrome",
    "phantomjs",
    "puppeteer",
    "playwright",
    "slimerjs",
    "selenium",
    "webdriver",
)
# HTTP libraries crawlerdetect does not list (kind crawler): scripts, not people.
HTTP_LIBRARY_AGENTS: tuple[str, ...] = (
    "python-requests",
    "python-urllib",
    "python-httpx",
    "aiohttp",
    "curl/",
    "wget/",
    "go-http-client",
    "java/",
    "okhttp",
    "apache-httpclient",
    "libwww-perl",
    "node-fetch",
    "undici",
    "axios/",
    "guzzlehttp",
    "powershell",
    "postmanruntime",
    "scrapy",
    "httpie",
    "restsharp",
    "dart:io",
    "reqwest",
)
# Mail clients that fetch images themselves (human): product tokens as the clients send
# them (sources in docs/tracking.md). Checked after the explicit bot evidence below and
# before the crawler list, whose generic words ("mail", "cfnetwork") catch Apple Mail.
MAIL_CLIENT_AGENTS: tuple[tuple[str, str], ...] = (
    # "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.x; Pro)"
    (r"microsoft outlook \d", "outlook_windows"),
    (r"microsoft office outlook/", "outlook_mac"),  # Microsoft Office Outlook/16.x (Mac OS/…)
    (r"outlook-(?:ios|android)/", "outlook_mobile"),
    (r"^mail/[\d.]+ cfnetwork/", "apple_mail"),  # Apple Mail (macOS) fetching directly
    (r"thunderbird/|betterbird/|lightning/", "thunderbird"),
    (r"samsungemail/", "samsung_email"),
    (r"yahoomobile(?:mail)?/|ymobilemail", "yahoo_mail_app"),
    (r"(?:^|[ ;(])gmail/|com\.google\.gmail", "gmail_app"),
    (r"^postbox |postbox/", "postbox"),
    (r"^the bat! ", "the_bat"),
    (r"em ?client/", "em_client"),
    (r"mailbird/", "mailbird"),
    (r"(?:^|[ ;(])spark/|readdle", "spark"),
    (r"airmail[/ ]", "airmail"),
    (r"canary(?:%20| )mail/", "canary_mail"),
    (r"outlook-express/", "outlook_express"),
    (r"(?:^|[ ;(])mailapp/", "mail_app"),
    (r"seamonkey/|iceape/|spicebird/", "seamonkey"),
)
_MAIL_CLIENT = re.compile(
    "|".join(f"(?P<m{n}>{pattern})" for n, (pattern, _) in enumerate(MAIL_CLIENT_AGENTS))
)


def _mail_client(agent: str) -> str | None:
    found = _MAIL_CLIENT.search(agent)
    if found is None or found.lastgroup is None:
        return None
    return MAIL_CLIENT_AGENTS[int(found.lastgroup[1:])][1]


# uap-core family names (ua-parser) of mail clients; everything else it names is a browser.
_MAIL_FAMILIES = frozenset(
    {"apple mail", "mail", "outlook", "thunderbird", "windows live mail", "lotus notes"}
)
# Apple Mail (macOS) and iOS Mail load remote images in a WebKit view whose agent has no
# "Safari/" or "Version/" token; a browser always has one. Checked against Apple Mail's
# agents in Matomo's fixtures and uap-core's "Apple Mail" rule.
_APPLE_MAIL_WEBKIT = re.compile(
    r"^mozilla/5\.0 \((?:macintosh|iphone|ipad|ipod)[^)]*\) applewebkit/[\d.]+ "
    r"\(khtml, like gecko\)(?: mobile/\w+)?$"
)
# "bot", "crawler", "spider", "scanner" as a word or product token (Googlebot/2.1,
# AdsBot-Google, bingbot) — but not inside device names such as "CUBOT X19", "M bot 60".
_BOT_WORD = re.compile(r"(?<!cu)(?:bot|crawler|spider|scanner)(?:[/;)\s_.-]|$)")
# An Android device model ("; M bot 60 Build/NRD90M", "; XBot Junior)"): not a product
# token. The whole platform comment after "Android <version>;" goes.
_ANDROID_MODEL = re.compile(r"(?<=android)[^;)]*;[^)]*")
# "compatible;" announces a non-browser inside a Mozilla/5.0 agent, except for Internet
# Explorer ("compatible; MSIE 9.0") and Konqueror, the browsers that used it.
_COMPATIBLE_NON_BROWSER = re.compile(
    r"compatible;\s*+(?!msie|konqueror|ms-office|ibrowse|netpositive|webpositive|u;)[^;)]*[;)]"
)
# Shapes no browser sends (checked against the browser fixtures, docs/tracking.md):
# extra words inside WebKit's "(KHTML, like Gecko)" ("…like Gecko; Google-Assess)"), a
# Mozilla agent whose only comment is one name ("Mozilla/5.0 (Google-PhysicalWeb)"), and
# a product token before "Mozilla/5.0".
_NON_BROWSER_SHAPE = re.compile(
    r"\(khtml, like gecko(?:; |, (?!safari))|^mozilla/5\.0 \([^;)]*\)$"
    # a tool's name before "Mozilla/5.0" ("page-preview-tool Mozilla/5.0 (…"); phones that
    # put their model first ("LG-P710 Mozilla/5.0 (Linux; U; Android …") are left alone
    r"|^(?!mozilla)[^\s(]+ mozilla/5\.0 \((?!.*(?:android|midp|profile/))"
)
# A contact address in the agent: bots say where to complain, people's browsers never do.
_CONTACT = re.compile(r"\+?https?://|www\.[a-z0-9-]+\.[a-z]|[\w.+-]+@[\w-]+\.[a-z]|\(\+http")
# Gmail's image prefetch (SparkPost/Bird, January 2022): an old Chrome/Edge string with a
# second "Mozilla/5.0" appended.
_GMAIL_PREFETCH = re.compile(r"chrome/42\.0\.2311\.135 safari/537\.36 edge/12\.246 mozilla/5\.0$")
# Mail image proxies: they fetch when a person opens the message (Gmail help 145919;
# help.yahoo.com SLN28749, the URL in Yahoo's own agent).
IMAGE_PROXY_AGENTS: tuple[tuple[str, str], ...] = (
    ("googleimageproxy", "google_image_proxy"),
    ("yahoomailproxy", "yahoo_mail_proxy"),
)
_BARE_MOZILLA = "mozilla/5.0"
# Agents shaped like a browser's or a mail client's, for agents uap-core cannot name.
_CLIENT_AGENT = re.compile(
    r"^mozilla/[45]\.0 \(|^opera/|^microsoft office/|^outlook-(?:ios|android)|^ms-office"
)
# Current desktop Chrome (≥ 70) and Firefox (≥ 60): the minimum major versions checked.
_APPENDABLE_FAMILIES = {"Chrome": 70, "Firefox": 60}
_APPENDED = re.compile(r"(?:safari/537\.36|firefox/[\d.]+)[;,]? ?([^\s;,].*)$")
_MOBILE_AGENT = re.compile(r"android|mobile|iphone|ipad")
_PREFETCH_VALUES = {"prefetch", "prerender", "preview"}
AGENT_CACHE_SIZE = 16_384  # distinct agents remembered per process (~1 KB each at most)
MAX_AGENT_LENGTH = 1_000  # longer agents are cut before matching (bounded regex time)
# crawlerdetect's compiled crawler list and the browser tokens it strips first.
_CRAWLERS = get_compiled_crawler_regex()
_CRAWLER_EXCLUSIONS = get_compiled_exclusions_regex()


@dataclass(frozen=True, slots=True)
class AgentVerdict:
    """What the user agent alone says. ``label`` None: it says nothing either way.

    ``verdict`` is the event verdict this agent gives when no earlier rule decides,
    built once per agent (verdicts are immutable, so the cached one is shared).
    """

    label: Label | None
    reason: str
    kind: AutomationKind | None = None
    detail: str = ""
    verdict: Verdict = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.label is Label.AUTOMATED:
            verdict = automated(self.reason, self.detail, kind=self.kind or AutomationKind.SCANNER)
        elif self.label is Label.HUMAN:
            verdict = Verdict(Label.HUMAN, self.reason, detail=self.detail)
        elif self.label is Label.PRIVACY_PROXY:
            verdict = privacy_proxy(self.reason, self.detail)
        else:
            verdict = _UNRECOGNIZED
        object.__setattr__(self, "verdict", verdict)


def _vendor(agent: str, table: Iterable[tuple[str, str]]) -> str | None:
    for needle, vendor in table:
        if needle in agent:
            return vendor
    return None


def _crawler_match(agent: str) -> str | None:
    """crawlerdetect's verdict: the crawler-list entry the agent matches, if any."""
    stripped = _CRAWLER_EXCLUSIONS.sub("", agent)
    if not stripped.strip():
        return None
    found = _CRAWLERS.search(stripped)
    return found.group(0)[:60] if found else None


def _appended_token(agent: str, parsed: ua_parser.UserAgent | None) -> bool:
    """A current desktop Chrome/Firefox agent with a product token after the browser's last.

    Browsers that add a token have their own uap-core family (Edge, Opera, Yandex, …);
    monitoring and audit tools append their name ("… Safari/537.36 NewRelicSynthetics/1.0").
    Old versions (forks of 2010-2015 appended their names) and mobile agents (in-app
    browsers append theirs) are left alone, and so is a token that calls itself a browser.
    """
    if parsed is None or parsed.family not in _APPENDABLE_FAMILIES:
        return False
    if _MOBILE_AGENT.search(agent):
        return False
    try:
        major = int(parsed.major or 0)
    except ValueError:
        return False
    if major < _APPENDABLE_FAMILIES[parsed.family]:
        return False
    found = _APPENDED.search(agent)
    return found is not None and "browser" not in found.group(1)


@functools.lru_cache(maxsize=AGENT_CACHE_SIZE)
def agent_verdict(user_agent: str) -> AgentVerdict:
    """Classify a user agent on its own (cached: the same agent recurs all day)."""
    raw = user_agent.strip()[:MAX_AGENT_LENGTH]
    agent = raw.lower()
    if not agent:
        return AgentVerdict(Label.AUTOMATED, "missing_user_agent", AutomationKind.CRAWLER)
    if _GMAIL_PREFETCH.search(agent):
        return AgentVerdict(Label.AUTOMATED, "gmail_prefetch", AutomationKind.PREFETCH)
    vendor = _vendor(agent, IMAGE_PROXY_AGENTS)
    if vendor:
        return AgentVerdict(Label.PRIVACY_PROXY, vendor, detail=vendor)
    vendor = _vendor(agent, SECURITY_SCANNER_AGENTS)
    if vendor:
        return AgentVerdict(
            Label.AUTOMATED, "security_scanner_agent", AutomationKind.SCANNER, vendor
        )
    vendor = _vendor(agent, LINK_PREVIEW_AGENTS)
    if vendor:
        return AgentVerdict(
            Label.AUTOMATED, "link_preview_agent", AutomationKind.LINK_PREVIEW, vendor
        )
    if any(needle in agent for needle in HEADLESS_AGENTS):
        return AgentVerdict(Label.AUTOMATED, "headless_browser_agent", AutomationKind.SCANNER)
    if agent == _BARE_MOZILLA:
        return AgentVerdict(Label.AUTOMATED, "bare_user_agent", AutomationKind.PREFETCH)
    if any(needle in agent for needle in HTTP_LIBRARY_AGENTS):
        return AgentVerdict(Label.AUTOMATED, "http_library_agent", AutomationKind.CRAWLER)
    if (
        _BOT_WORD.search(_ANDROID_MODEL.sub("", agent))
        or _CONTACT.search(agent)
        or _COMPATIBLE_NON_BROWSER.search(agent)
        or _NON_BROWSER_SHAPE.search(agent)
    ):
        return AgentVerdict(Label.AUTOMATED, "bot_agent", AutomationKind.CRAWLER)
    vendor = _mail_client(agent)
    if vendor or _APPLE_MAIL_WEBKIT.match(agent):
        return AgentVerdict(Label.HUMAN, "mail_client_agent", detail=vendor or "apple_mail")
    matched = _crawler_match(raw)
    if matched:
        return AgentVerdict(Label.AUTOMATED, "crawler_agent", AutomationKind.CRAWLER, matched)
    parsed = ua_parser.parse(raw)
    if parsed.device is not None and parsed.device.family == "Spider":
        return AgentVerdict(Label.AUTOMATED, "bot_agent", AutomationKind.CRAWLER, "uap-core")
    family = parsed.user_agent.family if parsed.user_agent is not None else "Other"
    if _appended_token(agent, parsed.user_agent):
        return AgentVerdict(Label.AUTOMATED, "bot_agent", AutomationKind.CRAWLER, "appended")
    if family.lower() in _MAIL_FAMILIES:
        return AgentVerdict(Label.HUMAN, "mail_client_agent", detail=family[:40])
    if family != "Other" or _CLIENT_AGENT.search(agent):
        return AgentVerdict(Label.HUMAN, "no_automation_signal", detail=family[:40])
    if parsed.os is None and parsed.device is None and "(" not in agent and "browser" not in agent:
        # Bare product tokens ("Amazon CloudFront", "venus/fedoraplanet"): no browser's
        # shape, no platform comment, nothing uap-core knows. A person's client names the
        # system it runs on; tools and services do not.
        return AgentVerdict(Label.AUTOMATED, "no_platform_agent", AutomationKind.CRAWLER)
    return AgentVerdict(None, "unrecognized_agent")


def _prefetch(facts: EventFacts) -> bool:
    for value in (facts.purpose, facts.sec_purpose, facts.x_moz, facts.x_purpose):
        if not value:
            continue
        tokens = {token.strip().lower() for token in re.split(r"[;,]", value)}
        if tokens & _PREFETCH_VALUES:
            return True
    return False


def prefetch_headers(meta: Mapping[str, str]) -> dict[str, str]:
    """The prefetch headers of a WSGI ``request.META``, as :class:`EventFacts` kwargs."""
    return {
        "purpose": meta.get("HTTP_PURPOSE", "")[:100],
        "sec_purpose": meta.get("HTTP_SEC_PURPOSE", "")[:100],
        "x_moz": meta.get("HTTP_X_MOZ", "")[:100],
        "x_purpose": meta.get("HTTP_X_PURPOSE", "")[:100],
    }


# --- sequence rules -----------------------------------------------------------------------


def _seconds_before(facts: EventFacts, prior: PriorEvent) -> float:
    return (facts.occurred_at - prior.at).total_seconds()


def _recent(facts: EventFacts, window: float, kind: Kind | None = None) -> list[PriorEvent]:
    return [
        prior
        for prior in facts.earlier
        if (kind is None or prior.kind is kind) and 0 <= _seconds_before(facts, prior) <= window
    ]


def _same_agent_or_unsettled(facts: EventFacts, prior: PriorEvent) -> bool:
    """Earlier clicks that may belong to the same actor as this one.

    Clicks already labelled automated from *another* address are a scanner's; they
    must not make a person's later click look like part of a sweep.
    """
    return prior.label is not Label.AUTOMATED or prior.ip == facts.ip


def _implicated(priors: Iterable[PriorEvent]) -> tuple[int, ...]:
    return tuple(
        sorted(
            {
                p.event_id
                for p in priors
                if p.event_id is not None and p.label is not Label.AUTOMATED
            }
        )
    )


def _sequence_verdict(facts: EventFacts) -> Verdict | None:
    if facts.kind is Kind.CLICK and facts.link_index is not None:
        window = [
            p
            for p in _recent(facts, MULTI_LINK_WINDOW_SECONDS, Kind.CLICK)
            if _same_agent_or_unsettled(facts, p)
        ]
        links = {p.link_index for p in window if p.link_index is not None} | {facts.link_index}
        if len(links) >= MULTI_LINK_COUNT:
            return automated("rapid_multi_link", f"{len(links)} links", _implicated(window))

        if facts.link_count >= ALL_LINKS_MIN_LINKS:
            window = [
                p
                for p in _recent(facts, ALL_LINKS_WINDOW_SECONDS, Kind.CLICK)
                if _same_agent_or_unsettled(facts, p)
            ]
            links = {p.link_index for p in window if p.link_index is not None}
            links.add(facts.link_index)
            if len(links) >= facts.link_count:
                return automated("all_links_clicked", f"{len(links)} links", _implicated(window))

    burst = _recent(facts, BURST_WINDOW_SECONDS, facts.kind)
    addresses = {p.ip for p in burst if p.ip} | ({facts.ip} if facts.ip else set())
    if len(addresses) >= BURST_IP_COUNT:
        return automated("multi_ip_burst", f"{len(addresses)} addresses", _implicated(burst))
    return None


# --- the classifier -----------------------------------------------------------------------


def classify(facts: EventFacts) -> Verdict:
    """Label one open or click. Pure: same facts, same verdict."""
    kind = facts.kind
    network = facts.network

    if facts.portal_verified:
        return Verdict(Label.HUMAN, PORTAL_VERIFIED)
    if facts.is_honeypot:
        return automated(
            "honeypot", implicates=_implicated(_recent(facts, SWEEP_WINDOW_SECONDS, Kind.CLICK))
        )

    method = facts.method.upper()
    if method == "HEAD":
        return automated("head_request")
    if method != "GET":
        return automated("non_get_method", method[:10])
    if _prefetch(facts):
        return automated("prefetch_header", kind=AutomationKind.PREFETCH)

    # Cut before the cache: the cache key must not hold a hostile megabyte-long agent.
    agent = agent_verdict(facts.user_agent[:MAX_AGENT_LENGTH])
    if agent.label is Label.AUTOMATED and agent.reason != "bare_user_agent":
        return agent.verdict

    covered = network is not None and network.scope.covers(kind)
    if agent.reason == "bare_user_agent":
        # Apple MPP fetches with exactly "Mozilla/5.0" from its egress ranges; no mail
        # client or browser a person uses sends it bare, so elsewhere it is automated.
        if covered and network is not None and network.kind is NetworkKind.PRIVACY_PROXY:
            if kind is Kind.OPEN:
                return privacy_proxy("apple_mpp", network.provider)
            return automated("image_proxy_click", network.provider)
        return automated(agent.reason, kind=AutomationKind.PREFETCH)

    if agent.label is Label.PRIVACY_PROXY:
        if kind is Kind.OPEN:
            return agent.verdict
        # Image proxies never follow links.
        return automated("image_proxy_click", agent.reason)

    if covered and network is not None:
        if network.kind is NetworkKind.GATEWAY:
            return automated("gateway_network", network.provider)
        if network.kind is NetworkKind.MAIL_PROXY and kind is Kind.OPEN:
            # A mail image proxy's network fetched the pixel (without its usual agent).
            return privacy_proxy("mail_proxy_network", network.provider)
        # An Apple egress address with a full agent is a person behind iCloud Private
        # Relay (e.g. webmail in Safari): judged on the agent like anyone else.

    if (
        kind is Kind.CLICK
        and facts.seconds_since_delivery is not None
        and facts.seconds_since_delivery < CLICK_TOO_SOON_SECONDS
    ):
        return automated("click_too_soon")

    sequence = _sequence_verdict(facts)
    if sequence is not None:
        return sequence

    return agent.verdict


# --- message-level engagement -------------------------------------------------------------

# The same order as reporting.models.LABEL_RANK (stored ranks, report SQL): a proxy fetch
# proves delivery, not reading, so it ranks below unknown — with "count unknown" on, an
# unknown open still makes the message opened in *human only* even beside a proxy fetch.
_RANK = {Label.AUTOMATED: 1, Label.PRIVACY_PROXY: 2, Label.UNKNOWN: 3, Label.HUMAN: 4}


@dataclass(frozen=True, slots=True)
class Engagement:
    """What a message's events add up to. ``None`` = no such event at all.

    The open label is the best of the open labels and the click labels: a click
    means the message was opened, so a human click upgrades the message to a human
    open even when the pixel was blocked or only a proxy fetched it. ``counts`` holds
    the events per ``<kind>s_<label>``, plus that implied open under ``opens_<label>``
    when no open event carries the message's open label.
    """

    open_label: Label | None
    click_label: Label | None
    open_from_click: bool = False  # the open label comes from a click, not a pixel
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def human_open(self) -> bool:
        return self.open_label is Label.HUMAN

    @property
    def human_click(self) -> bool:
        return self.click_label is Label.HUMAN

    def opened(self, *, exclude_automated: bool, count_unknown: bool) -> bool:
        return self.open_label is not None and label_counts(
            self.open_label, exclude_automated=exclude_automated, count_unknown=count_unknown
        )

    def clicked(self, *, exclude_automated: bool, count_unknown: bool) -> bool:
        return self.click_label is not None and label_counts(
            self.click_label, exclude_automated=exclude_automated, count_unknown=count_unknown
        )


def _best(labels: Iterable[Label]) -> Label | None:
    return max(labels, key=_RANK.__getitem__, default=None)


def message_engagement(events: Iterable[tuple[Kind | str, Label | str]]) -> Engagement:
    """Fold one message's ``(kind, label)`` events into its engagement state. Pure.

    Portal reads are passed as opens labelled human (reason ``portal_verified``).
    """
    opens: list[Label] = []
    clicks: list[Label] = []
    counts: dict[str, int] = {}
    for kind, label in events:
        kind, label = Kind(kind), Label(label)
        (opens if kind is Kind.OPEN else clicks).append(label)
        key = f"{kind.value}s_{label.value}"
        counts[key] = counts.get(key, 0) + 1
    best_open, best_click = _best(opens), _best(clicks)
    open_label = _best([label for label in (best_open, best_click) if label is not None])
    from_click = open_label is not None and (
        best_open is None or _RANK[open_label] > _RANK[best_open]
    )
    if open_label is not None and open_label not in opens:
        # The open the click implies counts in the totals too, at the message's open
        # label, so unique opened never exceeds total opens (rollups.engagement_select).
        key = f"opens_{open_label.value}"
        counts[key] = counts.get(key, 0) + 1
    return Engagement(
        open_label=open_label, click_label=best_click, open_from_click=from_click, counts=counts
    )


def label_counts(label: Label | str, *, exclude_automated: bool, count_unknown: bool) -> bool:
    """Whether an event with ``label`` counts in statistics under the org settings.

    A privacy-proxy open proves delivery to a real mailbox, not that a person read it:
    *human only* never counts it (reports show it beside the human numbers); *include
    automated* counts everything.
    """
    label = Label(label)
    if not exclude_automated or label is Label.HUMAN:
        return True
    return label is Label.UNKNOWN and count_unknown
