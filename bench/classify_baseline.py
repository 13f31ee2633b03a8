"""Frozen copy of main's classifier (ruleset 2026.11.1): bench/classify.py's baseline.

Not used by the application. The original module docstring follows.


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

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

RULESET_VERSION = "2026.11.1"


class Kind(StrEnum):
    OPEN = "open"
    CLICK = "click"


class Label(StrEnum):
    HUMAN = "human"
    AUTOMATED = "automated"
    UNKNOWN = "unknown"


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

    ``device_unknown`` is true when the request does not describe the reader's own
    device (a proxy fetched it, or a machine did). ``implicates`` lists the ids of
    earlier events of the message that this event shows to be part of the same
    automated sweep; the ingester relabels them ``automated`` / ``sweep_member``.
    """

    label: Label
    reason: str
    ruleset_version: str = RULESET_VERSION
    device_unknown: bool = False
    detail: str = ""
    implicates: tuple[int, ...] = ()

    def as_dict(self) -> dict[str, object]:
        return {
            "label": self.label.value,
            "reason": self.reason,
            "ruleset_version": self.ruleset_version,
            "device_unknown": self.device_unknown,
        }


def automated(reason: str, detail: str = "", implicates: tuple[int, ...] = ()) -> Verdict:
    return Verdict(
        Label.AUTOMATED, reason, device_unknown=True, detail=detail, implicates=implicates
    )


# Reason for earlier events relabelled because a later event exposed the sweep.
SWEEP_MEMBER = "sweep_member"
PORTAL_VERIFIED = "portal_verified"


# --- user-agent tables --------------------------------------------------------------------
# (substring, lower-cased) → vendor. Vendors rarely document their scanners' agents;
# see docs/tracking.md for where each entry comes from and how sure we are.
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
    ("mcafee", "trellix"),
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
)
LINK_PREVIEW_AGENTS: tuple[tuple[str, str], ...] = (
    ("slackbot", "slack"),
    ("facebookexternalhit", "meta"),
    ("whatsapp", "meta"),
    ("twitterbot", "x"),
    ("linkedinbot", "linkedin"),
    ("telegrambot", "telegram"),
    ("discordbot", "discord"),
    ("skypeuripreview", "microsoft_teams_skype"),
    ("microsoftpreview", "microsoft"),
    ("microsoft office existence discovery", "microsoft_office"),
    ("bingpreview", "microsoft_bing"),
    ("iframely", "iframely"),
    ("embedly", "embedly"),
    ("pinterest", "pinterest"),
    ("redditbot", "reddit"),
    ("applebot", "apple"),
    ("google-pagerenderer", "google"),
    ("google-inspectiontool", "google"),
    ("feedfetcher-google", "google"),
)
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
)
HEADLESS_AGENTS: tuple[str, ...] = ("headlesschrome", "phantomjs", "puppeteer", "playwright")
# "bot", "crawler", "spider", "scanner" as a word or product token (Googlebot/2.1,
# AdsBot-Google, bingbot) — but not inside device names such as "CUBOT X19".
_BOT_WORD = re.compile(r"(?<!cu)(?:bot|crawler|spider|scanner)(?:[/;)\s-]|$)")
# Gmail's image prefetch (SparkPost/Bird, January 2022): an old Chrome/Edge string with a
# second "Mozilla/5.0" appended.
_GMAIL_PREFETCH = re.compile(r"chrome/42\.0\.2311\.135 safari/537\.36 edge/12\.246 mozilla/5\.0$")
_GOOGLE_IMAGE_PROXY = "googleimageproxy"
_YAHOO_MAIL_PROXY = "yahoomailproxy"
_BARE_MOZILLA = "mozilla/5.0"
# Agents of real mail clients and browsers: "Mozilla/5.0 (platform...)" and the
# Outlook/Thunderbird families that fetch images without a Mozilla prefix.
_CLIENT_AGENT = re.compile(
    r"^mozilla/5\.0 \(|^microsoft office/|^outlook-(?:ios|android)|thunderbird|^ms-office"
)
_PREFETCH_VALUES = {"prefetch", "prerender", "preview"}


def _vendor(agent: str, table: Iterable[tuple[str, str]]) -> str | None:
    for needle, vendor in table:
        if needle in agent:
            return vendor
    return None


def _prefetch(facts: EventFacts) -> bool:
    for value in (facts.purpose, facts.sec_purpose, facts.x_moz, facts.x_purpose):
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
    agent = facts.user_agent.strip().lower()
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
        return automated("prefetch_header")

    if not agent:
        return automated("missing_user_agent")
    if _GMAIL_PREFETCH.search(agent):
        return automated("gmail_prefetch")
    vendor = _vendor(agent, SECURITY_SCANNER_AGENTS)
    if vendor:
        return automated("security_scanner_agent", vendor)
    vendor = _vendor(agent, LINK_PREVIEW_AGENTS)
    if vendor:
        return automated("link_preview_agent", vendor)
    if any(needle in agent for needle in HEADLESS_AGENTS):
        return automated("headless_browser_agent")
    if any(needle in agent for needle in HTTP_LIBRARY_AGENTS):
        return automated("http_library_agent")
    if _BOT_WORD.search(agent):
        return automated("bot_agent")

    if agent == _BARE_MOZILLA:
        # Apple MPP fetches with exactly "Mozilla/5.0"; no mail client or browser a
        # person uses sends it bare, so it is automated even outside Apple's ranges.
        if (
            network is not None
            and network.kind is NetworkKind.PRIVACY_PROXY
            and network.scope.covers(kind)
        ):
            return automated("apple_mpp", network.provider)
        return automated("bare_user_agent")

    for needle, reason in (
        (_GOOGLE_IMAGE_PROXY, "google_image_proxy"),
        (_YAHOO_MAIL_PROXY, "yahoo_mail_proxy"),
    ):
        if needle in agent:
            if kind is Kind.OPEN:
                # The proxy fetches when a person opens the message: a human open on a
                # device we cannot see.
                return Verdict(Label.HUMAN, reason, device_unknown=True)
            return automated("image_proxy_click", reason)

    if network is not None and network.scope.covers(kind):
        if network.kind is NetworkKind.GATEWAY:
            return automated("gateway_network", network.provider)
        if network.kind is NetworkKind.MAIL_PROXY and kind is Kind.OPEN:
            return Verdict(
                Label.HUMAN, "mail_proxy_network", device_unknown=True, detail=network.provider
            )

    if (
        kind is Kind.CLICK
        and facts.seconds_since_delivery is not None
        and facts.seconds_since_delivery < CLICK_TOO_SOON_SECONDS
    ):
        return automated("click_too_soon")

    sequence = _sequence_verdict(facts)
    if sequence is not None:
        return sequence

    if _CLIENT_AGENT.search(agent):
        return Verdict(Label.HUMAN, "no_automation_signal")
    return Verdict(Label.UNKNOWN, "unrecognized_agent", device_unknown=True)


# --- message-level engagement -------------------------------------------------------------

_RANK = {Label.AUTOMATED: 1, Label.UNKNOWN: 2, Label.HUMAN: 3}


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
    """Whether an event with ``label`` counts in statistics under the org settings."""
    label = Label(label)
    if not exclude_automated or label is Label.HUMAN:
        return True
    return label is Label.UNKNOWN and count_unknown
