"""The one classifier of refusals: DSN findings and replies received during the SMTP dialogue.

A reason comes from the reply/diagnostic text first (the text says *why*: "5.7.1 ... blocked
using Spamhaus" is a blocklist, not a generic policy refusal), then from the RFC 3463
enhanced status code, then from the status class alone. Every rule is a row of a table
below with the source it came from; :attr:`Classification.rule` names the row that matched
("text:blocked:blocklist", "status:5.1.1", "class:5"), which is the evidence kept with each
bounce. Tables are compiled once at import.
"""

from __future__ import annotations

import re
from functools import lru_cache

from campaigns.sending.feedback.types import SCOPE, Classification, Reason, is_hard

# ---------------------------------------------------------------------------------------
# Text rules: (reason, rule name, pattern). Checked in this order; the first match wins,
# so the specific sender-side causes (authentication, blocklists, spam) come before the
# generic recipient wording that receivers often add to them ("mailbox unavailable").
# Sources: RFC 3463/7372 wording, the reason vocabulary of the bounce-classification
# projects (Sisimai's reason list, Mailman's flufl.bounce detectors) and the reply texts
# documented by the MTAs and providers themselves (Postfix, Exim, Sendmail, qmail, Exchange,
# Gmail, Yahoo, Outlook.com postmaster pages).
# ---------------------------------------------------------------------------------------
_TEXT_RULES: tuple[tuple[Reason, str, str], ...] = (
    # RFC 7372 / RFC 7489 / Gmail and Outlook postmaster replies: authentication failures.
    (Reason.AUTH_FAILURE, "dmarc", r"\bdmarc\b|5\.7\.2[3-6]\b"),
    (Reason.AUTH_FAILURE, "spf", r"\bspf\b|sender policy framework"),
    (Reason.AUTH_FAILURE, "dkim", r"\bdkim\b|domainkeys"),
    (Reason.AUTH_FAILURE, "unauthenticated", r"unauthenticated (?:email|mail|sender)"),
    # DNSBL / reputation refusals (Postfix "blocked using", Spamhaus/Barracuda/SpamCop
    # replies, Outlook "banned sending IP", Yahoo "[TSS04]", reverse-DNS requirements).
    (
        Reason.BLOCKED,
        "blocklist",
        r"blocked using (?!spam)|\b(?:black|block|deny|ban)[ -]?list(?:ed)?\b|spamhaus|spamcop"
        r"|\bsorbs\b"
        r"|barracuda ?(?:central|reputation)|\b(?:dns)?rbl\b|\bdnsbl\b|(?<!not )listed (?:at|on"
        r"|in) "
        r"|banned sending ip|\btss0[45]\b|poor reputation|bad reputation|sender reputation"
        r"|ip reputation|reputation of|low reputation",
    ),
    (
        Reason.BLOCKED,
        "ptr",
        r"reverse (?:dns|lookup)|\bptr\b|\brdns\b|no reverse|cannot find your hostname"
        r"|client host rejected: cannot find|hostname does not resolve",
    ),
    # Spam content refusals (SpamAssassin, Gmail "likely unsolicited mail", Yahoo, AOL).
    (
        Reason.SPAM_DETECTED,
        "spam",
        r"spam|\bjunk mail|unsolicited|\bbulk (?:e-?)?mail|\bmass mail|\buce\b|\bube\b|\buribl\b"
        r"|\bsurbl\b"
        r"|message (?:is|was) (?:classified|considered|identified|detected) as|mail flood"
        r"|5\.7\.28\b|content (?:filter|scan)[^.;\n]{0,40}reject",
    ),
    (
        Reason.BLOCKED,
        "ip-blocked",
        r"(?:ip|client|host|connection|address|domain)[^.;\n]{0,40}\b(?:blocked|banned)\b"
        r"|\bblocked\b[^.;\n]{0,30}\b(?:ip|client|host|domain)\b|access denied[^.;\n]{0,20}"
        r"\b(?:ip|client)\b|refused to talk to me|not allowed to send mail|has been blocked",
    ),
    # Too many connections / messages (Yahoo "[TS0x]", Gmail 4.7.28/4.2.1 rate, Exim).
    (
        Reason.RATE_LIMITED,
        "rate",
        r"too many (?:connections|concurrent|messages(?! (?:on|in) )|recipients|sessions|mails"
        r"|emails)"
        r"|sending (?:quota|limit)|daily (?:sending )?(?:quota|limit)"
        r"|rate limit|rate-limit|ratelimit|throttl|sending rate|\bts0[123]\b"
        r"|connection limit|exceeded[^.;\n]{0,30}(?:connections|rate|messages per)"
        r"|receiving mail at a rate|try again later[^.;\n]{0,20}rate",
    ),
    # Relaying (Postfix "Relay access denied", Sendmail "Relaying denied", qmail rcpthosts).
    (
        Reason.RELAYING_DENIED,
        "relay",
        r"relay(?:ing)? (?:access )?(?:denied|not permitted|not allowed|prohibited)"
        r"|unable to relay|not permitted to relay|we do not relay|no relaying|relay not permitted"
        r"|allowed rcpthosts|not a gateway|relaying (?:is )?(?:denied|prohibited)|\bas a relay\b",
    ),
    # Virus / attachment / content (Amavis, Exchange transport rules, Mimecast).
    (
        Reason.CONTENT_REJECTED,
        "content",
        r"\bvirus|malware|infected|\bbanned (?:file|attachment|content)|attachment[^.;\n]{0,30}"
        r"(?:not allowed|prohibited|blocked|rejected)|(?:message|mail) content[^.;\n]{0,30}"
        r"(?:rejected|not accepted|denied)|content (?:rejected|not accepted)|executable",
    ),
    # Mailbox full / quota (RFC 3463 X.2.2, Postfix/Dovecot/Exchange/Gmail quota replies).
    (
        Reason.MAILBOX_FULL,
        "quota",
        r"mail ?box (?:is )?full|mailbox[^.;\n]{0,30}(?:full|quota|exceed|size limit|space)"
        r"|over ?quota"
        r"|quota|enough (?:disk |storage )?space|disk space|too many messages (?:on|in) "
        r"|exceeded (?:its|the|his|her)?\s*storage|insufficient (?:storage|space)"
        r"|not enough (?:storage|space)|mailfolder is full|storage (?:limit|allocation)"
        r"|out of storage|full mailbox|user is over|account is full|disk quota",
    ),
    # Message size (RFC 3463 X.2.3/X.3.4 wording, Postfix/Exim/Exchange size replies).
    (
        Reason.MESSAGE_TOO_BIG,
        "size",
        r"message (?:is )?too (?:big|large)|message size[^.;\n]{0,30}exceed|exceeds?[^.;\n]{0,40}"
        r"(?:maximum|size) (?:message )?(?:size|limit)|size limit|message length exceeds"
        r"|larger than[^.;\n]{0,30}(?:allowed|limit|maximum)|too large",
    ),
    # Moved / gone for good (RFC 3463 X.1.6, "no longer" wording).
    (
        Reason.MAILBOX_DISABLED,
        "moved",
        r"has moved|mailbox (?:has )?moved|no longer (?:active|valid|available|in use|exists?"
        r"|accepts?|employed|with|at|here)|closed account|account (?:has been )?(?:closed"
        r"|removed|deleted|terminated)",
    ),
    # Temporary resolver trouble (Postfix "Name service error ... try again"): no verdict
    # on the domain yet; then domain-level failures (RFC 3463 X.1.2/X.4.4, RFC 7505 null
    # MX, resolver replies).
    (
        Reason.NETWORK_ERROR,
        "dns-temporary",
        r"host not found, try again|malformed (?:or unexpected )?name server"
        r"|lookup failed, try again"
        r"|temporary (?:dns|lookup) (?:failure|error)",
    ),
    (
        Reason.HOST_UNKNOWN,
        "host",
        r"host (?:or domain name )?(?:not found|unknown)|unknown host|domain (?:not found"
        r"|does not exist|unknown|name not found)|name or service not known|no such domain"
        r"|unrouteable mail domain|no (?:mx|mail exchanger|route) (?:record|for|found)|nxdomain"
        r"|couldn't find any host|could not find any host|null mx|does not accept (?:e-?)?mail"
        r"|unresolvable|domain (?:isn't|is not) in my list|dns (?:lookup )?fail|host lookup fail"
        r"|no valid mx",
    ),
    # Recipient address unknown (RFC 3463 X.1.1 wording; Postfix, Exim, Sendmail, qmail,
    # Exchange "RESOLVER.ADR.RecipNotFound", Gmail "does not exist", Yahoo "doesn't have a").
    (
        Reason.USER_UNKNOWN,
        "unknown",
        r"user unknown|unknown user|(?:no such|unknown|invalid|bad|illegal) (?:user|mailbox"
        r"|recipient|address|account|local ?part|addressee|e-?mail)|recipient (?:address )?"
        r"(?:unknown|not found|invalid|does not exist)|(?:user|mailbox|address|account"
        r"|recipient|addressee) (?:\S+ )?(?:does ?n[o']t exist|not found|unknown|not exist"
        r"|is unknown|nonexistent|non-existent)|does not exist|doesn't exist|doesn't have an?"
        r" [^\s]+ account|no mailbox|not a valid (?:user|mailbox|recipient)|recipnotfound"
        r"|unrouteable address|undeliverable address|no such person|not listed in|unknown "
        r"(?:local|or illegal)|addressee unknown|user not found|mailbox "
        r"unavailable|mailbox not available|not our customer|invalid address"
        r"|unknown address|no account|isn't a valid|is not a valid|doesn't have a mailbox"
        r"|not a known user|is not an active (?:address|user|mailbox)|no mail ?box|bad_recipient"
        r"|invalid (?:final delivery )?userid|name is not recognized|not recognized as a valid",
    ),
    # Suspended / disabled / inactive accounts (Sisimai's "Suspend": the account exists).
    (
        Reason.SUSPENDED,
        "suspended",
        r"\b(?:account|mailbox|user|address|recipient)\b[^.;\n]{0,40}\b(?:suspended|disabled"
        r"|deactivated|inactive|locked|frozen|expired|not active|unavailable for)\b"
        r"|\b(?:suspended|disabled|deactivated|inactive) (?:account|mailbox|user)",
    ),
    # Queue lifetime exceeded (RFC 3463 X.4.7; Exim "retry timeout exceeded", qmail "I'm not
    # going to try again", Sendmail "could not be delivered for 5 days").
    (
        Reason.EXPIRED,
        "expired",
        r"delivery time expired|retry time(?:out)? (?:not reached|exceeded)|(?:message|mail)"
        r" expired|expired after|queue (?:time|lifetime)|could not be delivered (?:for|within)"
        r"|(?:was|has been|have been) (?:delayed|undeliverable) for|giving up|too long in queue"
        r"|been in the queue|timeout (?:exceeded|waiting)|time limit exceeded|will keep trying"
        r"|failing for a long time|not been collected|(?:failed"
        r"|after) \d+ (?:delivery )?(?:attempts|days)",
    ),
    # Transport trouble on the way (RFC 3463 X.4.x: no answer, bad connection, routing loop).
    (
        Reason.NETWORK_ERROR,
        "network",
        r"connection (?:refused|timed? ?out|reset|closed|dropped|lost)|network (?:is )?"
        r"unreachable|no route to host|(?:mail|routing) loop\b|too many hops"
        r"|hop count|lost connection|message looping|(?:unable|could not|couldn't"
        r"|failed) to connect"
        r"|timed out|tls (?:handshake|negotiation) fail|temporary lookup failure|timeout",
    ),
    # The receiver's own trouble (RFC 3463 X.3.x: system full, not accepting, misconfigured).
    (
        Reason.SYSTEM_ERROR,
        "system",
        r"system (?:error|failure|not available|unavailable)|internal (?:server )?error|local "
        r"(?:error|configuration)|configuration error|resources? (?:temporarily )?unavailable"
        r"|insufficient system|disk full|server (?:is )?(?:busy|unavailable)|service (?:is )?"
        r"(?:not available|unavailable|temporarily)|mailer error|temporary (?:failure|error)"
        r"|try again later|transaction failed|i/o error|out of memory|system full|loops back to"
        r"|service (?:is )?currently unavailable|command died|not unique",
    ),
    # Protocol errors of the sending side (RFC 5321 500/501/503 replies, RFC 3463 X.5.x).
    (
        Reason.SYNTAX_ERROR,
        "syntax",
        r"syntax error|command (?:unrecognized|not (?:recognized|implemented))|bad sequence"
        r"|line too long|bare lf|unrecognized command|protocol error",
    ),
    # Catch-all refusal wording (RFC 3463 X.7.1 "delivery not authorized"; recipient-side
    # filters, challenge-response systems). Weak: a specific status code beats it (_WEAK).
    (
        Reason.POLICY,
        "policy",
        r"polic|not authori[sz]ed|administrative prohibition|prohibited|not permitted|denied"
        r"|rejected by|refused|not accepted|\bfilter|\bblocked\b|rejected|(?:not"
        r"|un)[ -]?(?:pre-?)?approved|permission",
    ),
    # RFC 3834 auto-replies quoted in a report ("I am out of the office").
    (Reason.VACATION, "vacation", r"out of (?:the )?office|on vacation|on holiday|auto-?reply"),
)

# Catch-all wording ("rejected", "denied", "not accepted") that only decides when the
# status code is generic: "550 5.1.1 <a>: Recipient address rejected" is an unknown user.
_WEAK = frozenset({"text:policy:policy"})

_TEXT = tuple(
    # Matched against the lower-cased reply: case-insensitive alternations are several times
    # slower in Python's re.
    (reason, f"text:{reason.value}:{name}", re.compile(pattern))
    for reason, name, pattern in _TEXT_RULES
)

# ---------------------------------------------------------------------------------------
# Enhanced status (RFC 3463 §3, RFC 7372, RFC 7505): "subject.detail" → reason. The class
# (4/5) is kept separately. Entries absent here fall back to the subject (X.n.*) table.
# ---------------------------------------------------------------------------------------
_STATUS_DETAIL: dict[str, Reason] = {
    "1.0": Reason.USER_UNKNOWN,  # other address status (in practice: a bad mailbox)
    "1.1": Reason.USER_UNKNOWN,  # bad destination mailbox address
    "1.2": Reason.HOST_UNKNOWN,  # bad destination system address
    "1.3": Reason.USER_UNKNOWN,  # bad destination mailbox address syntax
    "1.4": Reason.USER_UNKNOWN,  # destination mailbox address ambiguous
    "1.6": Reason.MAILBOX_DISABLED,  # destination mailbox has moved
    "1.7": Reason.POLICY,  # bad sender's mailbox address syntax
    "1.8": Reason.POLICY,  # bad sender's system address
    "1.10": Reason.HOST_UNKNOWN,  # RFC 7505: recipient address has null MX
    "2.0": Reason.UNDEFINED,  # other or undefined mailbox status
    "2.1": Reason.SUSPENDED,  # mailbox disabled, not accepting messages
    "2.2": Reason.MAILBOX_FULL,  # mailbox full
    "2.3": Reason.MESSAGE_TOO_BIG,  # message length exceeds administrative limit
    "2.4": Reason.SYSTEM_ERROR,  # mailing list expansion problem
    "3.0": Reason.SYSTEM_ERROR,
    "3.1": Reason.SYSTEM_ERROR,  # mail system full
    "3.2": Reason.SYSTEM_ERROR,  # system not accepting network messages
    "3.3": Reason.CONTENT_REJECTED,  # system not capable of selected features
    "3.4": Reason.MESSAGE_TOO_BIG,  # message too big for system
    "3.5": Reason.SYSTEM_ERROR,  # system incorrectly configured
    "4.0": Reason.NETWORK_ERROR,
    "4.1": Reason.NETWORK_ERROR,  # no answer from host
    "4.2": Reason.NETWORK_ERROR,  # bad connection
    "4.3": Reason.NETWORK_ERROR,  # directory server failure
    "4.4": Reason.HOST_UNKNOWN,  # unable to route
    "4.5": Reason.SYSTEM_ERROR,  # mail system congestion
    "4.6": Reason.NETWORK_ERROR,  # routing loop detected
    "4.7": Reason.EXPIRED,  # delivery time expired
    "5.0": Reason.SYNTAX_ERROR,
    "5.1": Reason.SYNTAX_ERROR,  # invalid command
    "5.2": Reason.SYNTAX_ERROR,  # syntax error
    "5.3": Reason.RATE_LIMITED,  # too many recipients
    "5.4": Reason.SYNTAX_ERROR,  # invalid command arguments
    "5.5": Reason.SYNTAX_ERROR,  # wrong protocol version
    "6.0": Reason.CONTENT_REJECTED,
    "6.1": Reason.CONTENT_REJECTED,  # media not supported
    "6.2": Reason.CONTENT_REJECTED,  # conversion required and prohibited
    "6.3": Reason.CONTENT_REJECTED,
    "6.4": Reason.CONTENT_REJECTED,
    "6.5": Reason.CONTENT_REJECTED,
    "7.0": Reason.POLICY,  # other security status
    "7.1": Reason.POLICY,  # delivery not authorized, message refused
    "7.2": Reason.POLICY,  # mailing list expansion prohibited
    "7.3": Reason.POLICY,  # security conversion required
    "7.4": Reason.POLICY,  # security features not supported
    "7.5": Reason.AUTH_FAILURE,  # cryptographic failure
    "7.6": Reason.AUTH_FAILURE,  # cryptographic algorithm not supported
    "7.7": Reason.AUTH_FAILURE,  # message integrity failure
    "7.8": Reason.AUTH_FAILURE,  # authentication credentials invalid (RFC 4954)
    "7.9": Reason.AUTH_FAILURE,  # authentication mechanism too weak (RFC 4954)
    "7.13": Reason.SUSPENDED,  # IANA enhanced status registry: user account disabled
    "7.17": Reason.MAILBOX_DISABLED,  # IANA registry: mailbox owner has changed
    "7.18": Reason.MAILBOX_DISABLED,  # IANA registry: domain owner has changed
    "7.20": Reason.AUTH_FAILURE,  # RFC 7372: no passing DKIM signature found
    "7.21": Reason.AUTH_FAILURE,  # no acceptable DKIM signature found
    "7.22": Reason.AUTH_FAILURE,  # no valid author-matched DKIM signature found
    "7.23": Reason.AUTH_FAILURE,  # SPF validation failed
    "7.24": Reason.AUTH_FAILURE,  # SPF validation error
    "7.25": Reason.BLOCKED,  # reverse DNS validation failed
    "7.26": Reason.AUTH_FAILURE,  # multiple authentication checks failed (DMARC)
    "7.27": Reason.POLICY,  # RFC 7505: sender address has null MX
    "7.28": Reason.SPAM_DETECTED,  # IANA registry: mail flood of similar abusive messages
}
_STATUS_SUBJECT: dict[str, Reason] = {
    "1": Reason.USER_UNKNOWN,
    "2": Reason.UNDEFINED,
    "3": Reason.SYSTEM_ERROR,
    "4": Reason.NETWORK_ERROR,
    "5": Reason.SYNTAX_ERROR,
    "6": Reason.CONTENT_REJECTED,
    "7": Reason.POLICY,
}
# A temporary (4.x.x) address-status code does not make an address unknown for good.
_TRANSIENT_OVERRIDE: dict[Reason, Reason] = {
    Reason.USER_UNKNOWN: Reason.UNDEFINED,
    Reason.HOST_UNKNOWN: Reason.NETWORK_ERROR,
    Reason.MAILBOX_DISABLED: Reason.SUSPENDED,
}
# Generic codes that say nothing beyond their class: the text decides, else "undefined".
_GENERIC = frozenset({"0.0", "5.0", "2.0", "3.0", "7.0"})

_ENHANCED = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
_BASIC = re.compile(r"(?<![\d.])([245])[0-9]{2}(?![\d.])")
NOT_REFUSALS = frozenset({"delivered", "relayed", "expanded"})


def enhanced_status(reply: str) -> str:
    """The RFC 3463 status in an SMTP reply text (``"5.1.1"``), or ``""``."""
    match = _ENHANCED.search(reply[:300])
    return ".".join(match.groups()) if match else ""


def reply_class(reply: str) -> str:
    """The class digit of the first SMTP reply code (``550`` → ``"5"``) in a text, or ``""``."""
    match = _BASIC.search(reply[:300])
    return match.group(1) if match else ""


def _make(reason: Reason, rule: str) -> Classification:
    return Classification(reason=reason, hard=is_hard(reason), scope=SCOPE[reason], rule=rule)


def classify(*, status: str, reply: str = "", action: str = "failed") -> Classification | None:
    """The reason for a refusal. ``None`` when the action reports no refusal (delivered,
    relayed, expanded). ``status`` is the RFC 3463 code ("5.1.1"; a bare class "5" or an
    SMTP code "550" is accepted); ``reply`` the SMTP reply / diagnostic text."""
    action = (action or "failed").strip().lower()
    if action in NOT_REFUSALS:
        return None
    return _classify(status.strip()[:16], " ".join(reply.split())[:1000], action == "delayed")


@lru_cache(maxsize=4096)
def _classify(status: str, reply: str, delayed: bool) -> Classification:
    if not status:
        status = enhanced_status(reply) or reply_class(reply)
    klass = status[:1] if status[:1] in ("2", "4", "5") else ""
    if delayed and not klass:
        klass = "4"
    detail = status[2:] if len(status) > 2 and status[1] == "." else ""
    transient = klass == "4"
    specific = bool(detail) and detail not in _GENERIC
    if reply:
        lowered = reply.lower()
        for reason, rule, pattern in _TEXT:
            if pattern.search(lowered):
                if transient and reason in _TRANSIENT_OVERRIDE:
                    # "4.x.x user unknown" (greylisting, a directory outage): not for good.
                    continue
                if rule in _WEAK and specific:
                    break  # "rejected", "denied": the specific status code says more
                return _make(reason, rule)
    if delayed:
        # A delay notice (RFC 3464 action "delayed") says the message is still queued.
        return _make(Reason.EXPIRED, "action:delayed")
    if specific:
        by_status = _STATUS_DETAIL.get(detail) or _STATUS_SUBJECT.get(detail.split(".")[0])
        if by_status is not None:
            if transient:
                by_status = _TRANSIENT_OVERRIDE.get(by_status, by_status)
            return _make(by_status, f"status:{status}")
    return _make(Reason.UNDEFINED, f"class:{klass}" if klass else "none")
