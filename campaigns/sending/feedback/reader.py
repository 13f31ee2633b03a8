"""Read one mail sent back to LuxMail: a bounce, a complaint, a report or an auto-reply.

Order of reading (first that applies):

1. ARF (RFC 5965) ``message/feedback-report`` parts: complaints, or authentication-failure
   reports (RFC 6591); Microsoft JMRP and header-only abuse reports (a returned message or
   its headers sent by an abuse/feedback-loop address) are complaints too.
2. DMARC aggregate reports (RFC 7489 §7.2): a zip/gzip/XML attachment holding ``<feedback>``.
3. RFC 3464 ``message/delivery-status`` (and RFC 6533 ``global-delivery-status``): every
   per-recipient group, whatever its position.
4. Auto-replies (RFC 3834 headers, X-Autoreply/X-Autorespond, Precedence: auto_reply, and
   out-of-office subjects in several languages) that are not delivery failures.
5. Bounces without a DSN part (Exim, qmail, Sendmail, Exchange, Yahoo, Gmail, …): the
   recipients Mailman's detectors (``flufl.bounce``) find, else the addresses of the human-
   readable report that stand next to an SMTP reply or failure wording; each finding keeps
   the nearby reply text as its diagnostic.

Anything that is mail but none of these is :attr:`FeedbackKind.UNRECOGNIZED`. Only what
is not mail, or is larger than :data:`MAX_BYTES`, raises :class:`FeedbackError`. Work is
bounded: the size cap, a cap on MIME parts and nesting, bounded text windows and bounded
decompression of DMARC attachments.
"""

from __future__ import annotations

import email
import email.errors
import email.policy
import gzip
import io
import re
import zipfile
import zlib
from email.header import Header, decode_header
from email.message import Message
from email.utils import parseaddr

from flufl.bounce import all_failures

from campaigns.sending.feedback.classifier import classify, enhanced_status, reply_class
from campaigns.sending.feedback.types import Feedback, FeedbackKind, Finding

MAX_BYTES = 2 * 1024 * 1024
MAX_PARTS = 64  # MIME parts looked at; a report has a handful
MAX_DEPTH = 8  # nesting of multiparts / attached messages
MAX_BOUNDARIES = 200  # more boundary parameters than this: read the headers only
TEXT_WINDOW = 32 * 1024  # characters of a human-readable report looked at
MAX_INFLATE = 64 * 1024  # DMARC attachments: only their start is decompressed, to find <feedback>
MAX_FLUFL_BYTES = 256 * 1024  # larger mail skips Mailman's line-by-line detectors

_VERP = re.compile(r"bounces\+([a-z2-7]{29})@", re.IGNORECASE)
_MESSAGE_ID = re.compile(r"<([a-z2-7]{29})\.\d+@", re.IGNORECASE)
_BOUNDARY = re.compile(r'boundary="([^"]{1,200})"', re.IGNORECASE)
_HEADER_LINE = re.compile(rb"^(?:From |[!-9;-~]{1,76}:)")
# An address as reports print it. The local part may not start with a quote or "=", and an
# Exchange/X.400 "smtp=" or "rfc822;" style prefix is not part of it.
_ADDRESS = re.compile(
    r"(?<![\w.+=/-])(?:(?:smtp|rfc822|mailto)[=:])?"
    r"([a-z0-9!#$%&*+/?^_`{|}~-][a-z0-9!#$%&'*+/=?^_`{|}~-]*(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{1,24})(?![\w-])",
    re.IGNORECASE,
)


# A MIME part as _walk yields it: (part, content type, inside a returned message).
Part = tuple[Message, str, bool]


class FeedbackError(Exception):
    """The document is not mail LuxMail can read (not mail at all, or too large)."""


# --- evidence tables --------------------------------------------------------------------

# Local parts that send reports, never the recipient of one (RFC 2142 mailbox names, MTA
# daemons).
_DAEMONS = re.compile(
    r"^(?:mailer-daemon|postmaster|mail-daemon|maildaemon|mailerdaemon|daemon|root|"
    r"mail\.?delivery(?:\.?subsystem)?|bounces?|noreply|no-reply|abuse|fbl|feedback(?:loop)?|"
    r"complaints?|nobody|mail|smtp|mmdf|double-bounce|majordomo|listserv)$",
    re.IGNORECASE,
)
# Subjects of delivery-failure reports (the MTAs' default wording, several languages).
# These word lists are matched against lower-cased text: case-insensitive alternations are
# several times slower in Python's re.
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|delivery (?:status|failure|failed|problem|report|notification"
    r"|has failed)|returned mail|return(?:ed)? to sender|failure notice|mail delivery|could"
    r" not (?:send|be delivered)|not delivered|non[- ]?deliver|nondeliver|delivery error"
    r"|mail system error|bounce|rejected|nicht zustellbar|unzustellbar|non remis|no entregado"
    r"|non recapitato|onbestelbaar|niedostarczon|message (?:blocked|refused)|delayed mail"
    r"|warning: could not|delivery (?:delayed|notification)|mail failure|failed mail"
)
# RFC 3834 and the de-facto auto-reply headers.
_AUTOREPLY_HEADERS = ("X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-Vacation")
_AUTOREPLY_SUBJECT = re.compile(
    r"out of (?:the )?office|\bout-of-office\b|auto(?:matic|matische|matisk)?[ -]?(?:reply"
    r"|response|antwort|answer|svar)|\bautoreply\b|vacation|on holiday|away from (?:my|the)"
    r"|abwesenheit|r[ée]ponse automatique|absence|respuesta autom[aá]tica|fuera de la oficina"
    r"|risposta automatica|fuori (?:sede|ufficio)|automatisch antwoord|afwezig"
    r"|resposta autom[aá]tica|ausente|automaattinen vastaus|odpowied[zź] automatyczna"
    r"|thank you for your (?:e-?mail|message)|automatyczna odpowied|automati\w* atbilde|nieobecno"
    r"|autosvar|fr[aå]nvar|automatick[aá] odpov[eě]|自動応答|自動返信|自动回复|不在"
    r"|автоответ|отпуск"
)
# Where a human-readable report starts quoting the returned message (Exim, Postfix,
# Sendmail, qmail, Exchange, Yahoo, Courier, Domino): addresses after it are not recipients.
_QUOTE_START = (
    "this is a copy of",
    "a copy of the original",
    "a copy of the message",
    "below this line is a copy",
    "original message",
    "the original message",
    "returned message",
    "unsent message below",
    "undelivered message",
    "header of the original",
    "headers of the original",
    "the header of the original",
    "forwarded message",
    "begin original",
    "begin returned",
    "message headers follow",
    "original mail",
    "original text follows",
)
# The earlier names of a recipient (Postfix "expanded from", Exim "generated from",
# Sendmail/PMDF "originally addressed to"): the same mailbox, not another recipient.
_ALIAS_OF = re.compile(
    r"(?:expanded from|generated (?:from|by)|originally addressed to|was addressed to)"
    r":?\s*<?([^\s<>()\"']{1,254}@[^\s<>()\"']{1,254}?)>?[)\s;,]",
)
_NOT_RECIPIENT_PREFIX = re.compile(
    r"(?:from|sender|return-path|reply-to|message-id|by|helo)\s*[:=]?\s*<?$"
)
_PERMANENT = re.compile(
    r"permanent|fatal|has failed|could not be delivered|not delivered|(?<![\d.])5\d\d"
)
_QUOTED_HEADER = re.compile(
    r"[ \t>]*(?:Received|Return-Path|Delivered-To|Message-I[dD]|DKIM-Signature|MIME-Version"
    r"|X-[A-Za-z-]{2,40}):[ \t]"
)
_FAILURE_WORDS = re.compile(
    r"(?<![\d.])[45]\d\d(?![\d.])|(?<![\d.])[45]\.\d{1,3}\.\d{1,3}|unknown|does not exist|not "
    r"exist|no such|invalid|not (?:a )?valid|rejected|refused|denied|failed|failure|unable"
    r"|could not|couldn't|"
    r"full|quota|disabled|suspended|undeliverable|not found|unavailable|blocked|permanent|"
    r"expired|timed? ?out|error|not delivered|too (?:big|large)|inactive|can't"
)
_DELAY_WORDS = re.compile(
    r"will (?:keep|continue) (?:trying|to try)|still (?:trying|being retried)|has been delayed"
    r"|is delayed|not yet been delivered|delivery (?:delayed|warning)|warning:|temporar"
    r"|will be retried|retry (?:for|until)|deferred"
)
# The reporting MTA's own wording (lower-case substrings, first rule that appears wins):
# names the format for evidence and statistics only.
_FORMAT_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("qmail", ("qmail",)),
    ("exim", ("created automatically by mail delivery software", "exim")),
    ("postfix", ("this is the mail system at host", "postfix")),
    ("sendmail", ("the original message was received at", "sendmail")),
    ("exchange", ("delivery has failed to these recipients", "did not reach", "exchange")),
    ("office365", ("outlook.com", "office365", "protection.outlook")),
    ("gmail", ("google.com", "gmail")),
    ("yahoo", ("yahoo",)),
    ("aol", ("aol.com",)),
    ("courier", ("courier mail server",)),
    ("domino", ("domino", "lotus notes")),
    ("mail.ru", ("mail.ru",)),
    ("amazon-ses", ("amazonses", "amazon ses")),
    ("mimecast", ("mimecast",)),
    ("barracuda", ("barracuda",)),
    ("mcafee", ("mcafee", "trellix", "mxlogic")),
    ("dragonfly", ("dragonfly",)),
    ("groupwise", ("groupwise", "novell")),
)


# --- helpers ----------------------------------------------------------------------------


def _clean(value: object, limit: int = 1000) -> str:
    return " ".join(str(value or "").split())[:limit]


def _address(value: str) -> str:
    """The address in a DSN/ARF field ("rfc822; <a@b>", "a@b", "<a@b>"), lower-cased."""
    value = _clean(value, 500)
    if ";" in value:
        value = value.split(";", 1)[1]
    match = _ADDRESS.search(value)
    if match:
        return match.group(1).lower()
    return value.strip(" <>").lower()[:254]


def _header_addresses(message: Message, name: str) -> list[str]:
    values = message.get_all(name, [])
    if not values:
        return []
    return [a.lower() for v in values for a in _ADDRESS.findall(str(v)[:2000])]


def _decode(part: Message) -> str:
    try:
        payload = part.get_payload(decode=True)
    except Exception:  # malformed transfer encoding: read it raw
        payload = None
    if not isinstance(payload, bytes):
        raw = part.get_payload()
        return raw if isinstance(raw, str) else ""
    payload = payload[: TEXT_WINDOW * 4]
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, "replace")
    except (LookupError, ValueError):  # unknown or bogus charset name
        return payload.decode("latin-1")


def _walk(message: Message) -> list[Part]:
    """Parts as (part, content type, inside a returned message), at most MAX_PARTS and
    MAX_DEPTH deep, iteratively (the content type is computed once: it is not cheap)."""
    out: list[Part] = []
    stack: list[tuple[Message, int, bool]] = [(message, 0, False)]
    while stack and len(out) < MAX_PARTS:
        part, depth, quoted = stack.pop()
        ctype = part.get_content_type()
        out.append((part, ctype, quoted))
        if depth >= MAX_DEPTH:
            continue
        payload = part.get_payload()
        if not isinstance(payload, list):
            continue
        if ctype in ("message/delivery-status", "message/global-delivery-status"):
            continue
        inner_quoted = quoted or (
            ctype.startswith("message/") and ctype != "message/feedback-report"
        )
        children = [p for p in payload if isinstance(p, Message)]
        stack.extend((child, depth + 1, inner_quoted) for child in reversed(children))
    return out


def _fields(part: Message) -> list[list[tuple[str, str]]]:
    """The field blocks of a delivery-status or feedback-report part."""
    payload = part.get_payload()
    if isinstance(payload, list):
        blocks = []
        for block in payload:
            if isinstance(block, Message):
                items = [(k.lower(), _clean(v)) for k, v in block.items()]
                # compat32 reads a feedback report as a message: its body may hold more.
                body = block.get_payload()
                if isinstance(body, str) and body.strip():
                    items += [f for b in _text_blocks(body) for f in b]
                blocks.append(items)
        return blocks
    return _text_blocks(_decode(part))


def _text_blocks(text: str) -> list[list[tuple[str, str]]]:
    blocks: list[list[tuple[str, str]]] = []
    for chunk in re.split(r"\r?\n[ \t]*\r?\n", text[:TEXT_WINDOW]):
        fields: list[tuple[str, str]] = []
        for line in chunk.splitlines():
            if line[:1] in (" ", "\t") and fields:
                name, value = fields[-1]
                fields[-1] = (name, _clean(value + " " + line))
            elif ":" in line:
                name, _, value = line.partition(":")
                fields.append((name.strip().lower(), _clean(value)))
        if fields:
            blocks.append(fields)
    return blocks


# --- the parts of a report ----------------------------------------------------------------


def _human_text(parts: list[Part]) -> tuple[str, str]:
    """The first human-readable part (text/plain, else stripped HTML) of the report, cut
    where the returned message starts, and uncut (it may quote the returned headers)."""
    html = ""
    for part, ctype, quoted in parts:
        if quoted or part.is_multipart():
            continue
        if ctype == "text/plain" or (ctype == "text" or not ctype):
            text = _decode(part)[:TEXT_WINDOW]
            if text.strip():
                return _cut_quote(text), text
        elif ctype == "text/html" and not html:
            html = re.sub(r"<[^>]{0,2000}>", " ", _decode(part)[: TEXT_WINDOW * 2])
            html = html.replace("&lt;", "<").replace("&gt;", ">").replace("&nbsp;", " ")
    return _cut_quote(html[:TEXT_WINDOW]), html[:TEXT_WINDOW]


def _cut_quote(text: str) -> str:
    """The report up to the returned message: its quote marker, or its first header line
    (Received:, Return-Path:, …) when the MTA quotes the headers without a marker."""
    offset = 0
    for number, line in enumerate(text.splitlines(keepends=True)):
        if offset >= 20 and (
            line.lstrip(" \t>-=*").lower().startswith(_QUOTE_START) or _QUOTED_HEADER.match(line)
        ):
            return text[:offset]
        offset += len(line)
        if number > 2000:
            break
    return text


def _returned_headers(parts: list[Part]) -> Message | None:
    for part, ctype, _ in parts:
        if ctype == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                return inner[0]
        elif ctype == "text/rfc822-headers":
            return email.message_from_string(_decode(part)[:TEXT_WINDOW])
    return None


# Headers of a returned message that carry LuxMail's tokens (the VERP return path, the
# Message-ID) or echo them.
_TOKEN_HEADERS = ("Return-Path", "Message-ID", "Sender", "Errors-To", "References", "In-Reply-To")


def _tokens(document: Message, parts: list[Part], text: str) -> list[str]:
    found: list[str] = []
    for name in ("To", "Delivered-To", "X-Original-To", "Envelope-To"):
        for value in document.get_all(name, []):
            found += _VERP.findall(str(value))
    for part, ctype, _ in parts:
        block = ""
        if ctype == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                block = " ".join(str(v) for n in _TOKEN_HEADERS for v in inner[0].get_all(n, []))
        elif ctype == "text/rfc822-headers":
            block = _decode(part)[:TEXT_WINDOW]
        if block:
            found += _VERP.findall(block)
            found += _MESSAGE_ID.findall(block)
    # Reports that quote the returned message inline (qmail, some Exim set-ups).
    found += _VERP.findall(text)
    found += _MESSAGE_ID.findall(text)
    return list(dict.fromkeys(t.lower() for t in found))


# --- RFC 3464 ---------------------------------------------------------------------------


def _context(text: str, address: str, lowered: str = "") -> str:
    """The reply text next to an address in the human-readable report: the address's
    line and the lines that follow it up to a blank line (at most 6). Of the address's
    first few occurrences, the first that stands beside an SMTP reply code (Gmail names the
    recipient alone, then quotes "550 5.1.1 <address>: ..." further down)."""
    lowered = lowered or text.lower()
    first = ""
    at = lowered.find(address)
    for _ in range(5):
        if at < 0:
            break
        start = lowered.rfind("\n", 0, at) + 1
        lines: list[str] = []
        for line in text[start : start + 1500].splitlines():
            if lines and not line.strip():
                break
            lines.append(line.strip())
            if len(lines) >= 6:
                break
        block = _clean(" ".join(lines))
        if reply_class(block):
            return block
        first = first or block
        at = lowered.find(address, at + len(address))
    return first


def _dsn_findings(part: Message, text: str) -> tuple[list[Finding], str]:
    blocks = _fields(part)
    reporting = ""
    findings: list[Finding] = []
    for block in blocks:
        fields: dict[str, str] = {}
        for name, value in block:
            fields.setdefault(name, value)
        if "reporting-mta" in fields and not reporting:
            reporting = _address(fields["reporting-mta"])
        final = _address(fields.get("final-recipient", ""))
        original = _address(fields.get("original-recipient", ""))
        # Final-Recipient (RFC 3464 §2.3.2, required); Original-Recipient when the final
        # one is an internal routing name ("user@sims-ms-daemon").
        recipient = final if _ADDRESS.fullmatch(final) else original if "@" in original else final
        status_field = fields.get("status", "")
        if not recipient and not status_field:
            continue  # the per-message block
        diagnostic = fields.get("diagnostic-code", "")
        if ";" in diagnostic[:20]:
            diagnostic = diagnostic.split(";", 1)[1].strip()
        status = enhanced_status(status_field) or enhanced_status(diagnostic)
        action = fields.get("action", "").split(" ")[0].lower()
        reply = diagnostic or (_context(text, recipient) if recipient else "")
        if not status:
            klass = reply_class(diagnostic) or ("4" if action == "delayed" else "")
            klass = klass or ("2" if action in ("delivered", "relayed", "expanded") else "5")
            status = f"{klass}.0.0"
        if not action:
            action = {"2": "delivered", "4": "delayed"}.get(status[0], "failed")
        classification = classify(status=status, reply=reply, action=action)
        if classification is None:
            classification = classify(status=status, reply=reply, action="failed")
        assert classification is not None
        findings.append(
            Finding(
                recipient=recipient,
                action=action,
                status=status,
                reply=reply[:1000],
                classification=classification,
                remote_mta=_address(fields.get("remote-mta", ""))[:255],
            )
        )
    return findings, reporting


# --- bounces without a DSN part ---------------------------------------------------------


def _excluded(document: Message) -> set[str]:
    """Addresses that are never the failed recipient: the report's sender and recipient."""
    out: set[str] = set()
    for name in ("From", "To", "Reply-To", "Sender", "Return-Path", "Delivered-To", "Cc"):
        out.update(_header_addresses(document, name))
    return out


def _is_daemon(address: str) -> bool:
    local = address.split("@", 1)[0]
    return bool(_DAEMONS.match(local)) or local.startswith(("bounces+", "bounce-", "owner-"))


def _text_findings(
    document: Message, text: str, returned: Message | None, *, detectors: bool
) -> list[Finding]:
    excluded = _excluded(document)
    lowered = text.lower()
    summary = _summary(text)
    candidates: dict[str, str] = {}
    for match in _ADDRESS.finditer(text):
        address = match.group(1).lower()
        if address in excluded or _is_daemon(address) or address in candidates:
            continue
        line_start = text.rfind("\n", 0, match.start()) + 1
        prefix = text[line_start : match.start()].lower()
        if _NOT_RECIPIENT_PREFIX.search(prefix):
            continue  # an address quoted as a header or a host, not a recipient
        candidates[address] = _context(text, address, lowered)
    aliases = set(_ALIAS_OF.findall(lowered))

    def unaliased(addresses: list[str]) -> list[str]:
        return [a for a in addresses if a not in aliases] or addresses

    # Exim names the failed recipients in a header of the report itself.
    recipients = [_address(v) for v in _header_addresses(document, "X-Failed-Recipients")]
    failing = unaliased([a for a, ctx in candidates.items() if _FAILURE_WORDS.search(ctx.lower())])
    # Every address the report names stands beside failure wording: no layout knowledge
    # needed (and Mailman's line-by-line detectors are the costliest step here).
    obvious = (bool(failing) and len(failing) == len(candidates)) or (
        len(candidates) == 1 and bool(summary)
    )
    if not recipients and detectors and not obvious:
        # Mailman's detectors know the layouts of many MTAs' reports.
        recipients = unaliased(
            [a for a in _flufl(document) if a not in excluded and not _is_daemon(a)]
        )
    recipients = recipients or failing[:20]
    if not recipients and summary:
        # A list of bare addresses under the report's failure wording ("could not be
        # delivered to the following recipients:").
        recipients = unaliased(list(candidates))[:5]
    if not recipients and returned is not None:
        # The returned message's recipient, when the report names nobody (Sisimai does
        # the same for reports that only say "your message could not be delivered").
        quoted_to = [
            a for a in _header_addresses(returned, "To") if a not in excluded and not _is_daemon(a)
        ]
        if len(quoted_to) == 1:
            recipients = quoted_to
    if not recipients:
        return []
    head = lowered[:4000]
    delayed = bool(_DELAY_WORDS.search(head)) and not _PERMANENT.search(head)
    findings = []
    for recipient in recipients[:100]:
        reply = candidates.get(recipient) or _context(text, recipient, lowered)
        if not _FAILURE_WORDS.search(reply.lower()):
            # The address stands alone: the reason is in the report's general wording.
            reply = _clean(f"{reply} {summary}")
        status = enhanced_status(reply)
        if not status:
            klass = reply_class(reply) or ("4" if delayed else "5")
            status = f"{klass}.0.0"
        action = "delayed" if status[0] == "4" else "failed"
        classification = classify(status=status, reply=reply, action=action)
        assert classification is not None
        findings.append(Finding(recipient, action, status, reply[:1000], classification))
    return findings


def _summary(text: str) -> str:
    """The report's own lines that state a failure (first few), for addresses that stand
    alone in a list."""
    replies: list[str] = []  # lines quoting an SMTP reply come first
    keep: list[str] = []
    for line in text[:6000].splitlines():
        line = line.strip()
        if line and reply_class(line):
            replies.append(line)
        elif line and len(keep) < 4 and _FAILURE_WORDS.search(line.lower()):
            keep.append(line)
        if len(replies) == 2:
            break
    return " ".join(replies + keep)[:600]


# --- ARF, DMARC, auto-replies --------------------------------------------------------------


def _arf(document: Message, part: Message, parts: list[Part]) -> Feedback:
    fields: dict[str, list[str]] = {}
    for block in _fields(part):
        for name, value in block:
            fields.setdefault(name, []).append(value)
    feedback_type = (fields.get("feedback-type") or ["abuse"])[0].split(" ")[0].lower()[:40]
    recipients = [
        _address(v)
        for name in ("original-rcpt-to", "removal-recipient")
        for v in fields.get(name, [])
    ]
    returned = _returned_headers(parts)
    if not recipients and returned is not None:
        recipients = _header_addresses(returned, "X-HmXmrOriginalRecipient") or _header_addresses(
            returned, "To"
        )
    kind = (
        FeedbackKind.AUTH_FAILURE_REPORT
        if feedback_type == "auth-failure"
        else FeedbackKind.COMPLAINT
    )
    provider = _provider(document, (fields.get("reporting-mta") or [""])[0])
    return Feedback(
        kind=kind,
        format="arf",
        provider=provider,
        feedback_type=feedback_type,
        header_tokens=tuple(_tokens(document, parts, "")),
        complained_recipients=tuple(dict.fromkeys(r for r in recipients if "@" in r)),
    )


def _provider(document: Message, reporting: str = "") -> str:
    _, sender = parseaddr(str(document.get("From", "")))
    domain = sender.rpartition("@")[2].lower()
    if reporting and "." in reporting:
        host = reporting.rpartition("@")[2]
        return ".".join(host.split(".")[-2:])[:100]
    return ".".join(domain.split(".")[-2:])[:100] if domain else ""


def _jmrp_or_header_abuse(document: Message, parts: list[Part]) -> bool:
    """Microsoft JMRP (a returned message from the Outlook.com/Hotmail feedback loop) and
    abuse reports quoting only headers: a returned message plus an abuse/complaint sender
    or subject, and no delivery-status part."""
    returned = _returned_headers(parts)
    if returned is None:
        return False
    if returned.get("X-HmXmrOriginalRecipient"):
        return True
    _, sender = parseaddr(str(document.get("From", "")))
    local = sender.split("@", 1)[0].lower()
    subject = _clean(document.get("Subject", ""), 300).lower()
    by_sender = local in (
        "abuse",
        "fbl",
        "feedback",
        "feedbackloop",
        "complaints",
        "staff",
        "scomp",
    )
    by_subject = bool(
        re.search(r"complaint|abuse report|spam report|reported as spam|feedback loop", subject)
    )
    return by_sender or by_subject


_DMARC_TYPES = frozenset(
    {
        "application/zip",
        "application/x-zip",
        "application/x-zip-compressed",
        "application/gzip",
        "application/x-gzip",
        "application/xml",
        "text/xml",
        "application/octet-stream",
    }
)


def _is_dmarc(document: Message, parts: list[Part]) -> bool:
    subject = _clean(document.get("Subject", ""), 300).lower()
    for part, ctype, quoted in parts:
        if quoted or ctype not in _DMARC_TYPES:
            continue
        filename = (part.get_filename() or "").lower()
        if not (filename.endswith((".zip", ".gz", ".xml")) or "report domain" in subject):
            continue
        data = part.get_payload(decode=True)  # compat32 decodes leniently, never raises
        if isinstance(data, bytes) and b"<feedback" in _inflate(data)[:4096]:
            return True
    return "report domain:" in subject and "submitter:" in subject


def _inflate(data: bytes) -> bytes:
    """The start of a zip/gzip/plain attachment, never more than MAX_INFLATE bytes."""
    try:
        if data[:2] == b"PK":
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                names = archive.namelist()[:1]
                if not names:
                    return b""
                with archive.open(names[0]) as member:
                    return member.read(MAX_INFLATE)
        if data[:2] == b"\x1f\x8b":
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
                return stream.read(MAX_INFLATE)
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error, ValueError, RuntimeError):
        return b""
    return data[:MAX_INFLATE]


def _is_auto_reply(document: Message) -> bool:
    submitted = _clean(document.get("Auto-Submitted", ""), 100).lower()
    precedence = _clean(document.get("Precedence", ""), 100).lower()
    if submitted.startswith("auto-replied") or precedence == "auto_reply":
        return True
    if any(document.get(name) for name in _AUTOREPLY_HEADERS):
        return True
    if document.get("X-Autogenerated", "").lower() == "reply":
        return True
    return bool(_AUTOREPLY_SUBJECT.search(_subject(document).lower()))


def _looks_like_bounce(document: Message) -> bool:
    """A mailer daemon / postmaster sender, or a delivery-failure subject."""
    _, sender = parseaddr(str(document.get("From", "")))
    if not sender or _is_daemon(sender):
        return True
    return bool(_BOUNCE_SUBJECT.search(_subject(document).lower()))


def _null_sender(document: Message) -> bool:
    """Sent with a null return path: reports, but auto-replies too (RFC 3834 §3.3)."""
    return _clean(document.get("Return-Path", ""), 10) == "<>"


def _subject(document: Message) -> str:
    """The Subject with RFC 2047 encoded words decoded (bounded, never raising)."""
    value = document.get("Subject", "")
    raw = _clean(value, 500)
    if "=?" not in raw and not isinstance(value, Header):
        return raw
    try:
        # 8-bit bytes in a header come back as a Header whose chunks keep the bytes.
        chunks = decode_header(value if isinstance(value, Header) else raw)
    except (ValueError, email.errors.HeaderParseError):
        return raw
    text = []
    for chunk, charset in chunks:
        if isinstance(chunk, str):
            text.append(chunk)
            continue
        try:
            text.append(chunk.decode(charset or "ascii", "replace"))
        except LookupError:  # unknown-8bit or a bogus charset name
            text.append(chunk.decode("utf-8", "replace"))
    return _clean(" ".join(text), 500)


def _format(text: str, document: Message) -> str:
    sample = f"{text[:3000]} {document.get('From', '')} {document.get('X-Mailer', '')}".lower()
    for name, needles in _FORMAT_RULES:
        if any(needle in sample for needle in needles):
            return name
    return "text"


def _flufl(document: Message) -> list[str]:
    try:
        temporary, permanent = all_failures(document)
    except Exception:  # a detector tripping on malformed mail must not lose the report
        return []
    found = []
    for address in (*permanent, *temporary):
        value = address.decode("utf-8", "replace") if isinstance(address, bytes) else str(address)
        value = _address(value)
        if "@" in value:
            found.append(value)
    return sorted(set(found), key=found.index)


# --- entry point ------------------------------------------------------------------------


def _message(raw: bytes) -> Message:
    if raw.count(b"boundary=") > MAX_BOUNDARIES or raw.count(b"BOUNDARY=") > MAX_BOUNDARIES:
        # Hostile nesting: read the headers only.
        return email.message_from_bytes(raw.split(b"\n\n", 1)[0] + b"\n\n")
    document = email.message_from_bytes(raw, policy=email.policy.compat32)
    if document.get_content_maintype() == "multipart" and not document.is_multipart():
        # A Content-Type header mangled by a relay (text run into the boundary value):
        # read the quoted boundary alone and parse again.
        found = _BOUNDARY.search(str(document.get("Content-Type", "")))
        head, sep, body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
        if found and sep:
            headers = email.message_from_bytes(head + b"\n\n")
            del headers["Content-Type"]
            headers["Content-Type"] = f'{document.get_content_type()}; boundary="{found.group(1)}"'
            return email.message_from_bytes(headers.as_bytes() + body)
    return document


def parse(raw: bytes) -> Feedback:
    """Read one mail. Never raises for mail; raises :class:`FeedbackError` for what is not
    mail (or is larger than :data:`MAX_BYTES`)."""
    if len(raw) > MAX_BYTES:
        raise FeedbackError("The report is larger than 2 MB.")
    head = raw[:8192].lstrip()[:1000]
    if not head or not _HEADER_LINE.match(head):
        raise FeedbackError("This is not an email message.")
    try:
        document = _message(raw)
        return _read(document, detectors=len(raw) <= MAX_FLUFL_BYTES)
    except (RecursionError, LookupError, ValueError, TypeError, IndexError, AttributeError):
        # The email package trips on some malformed mail: it is mail all the same.
        return Feedback(kind=FeedbackKind.UNRECOGNIZED)


def _read(document: Message, *, detectors: bool) -> Feedback:
    parts = _walk(document)
    for part, ctype, quoted in parts:
        if not quoted and ctype == "message/feedback-report":
            return _arf(document, part, parts)
    text, full_text = _human_text(parts)
    dsn = [
        p
        for p, ctype, quoted in parts
        if not quoted and ctype in ("message/delivery-status", "message/global-delivery-status")
    ]
    findings: list[Finding] = []
    reporting = ""
    fmt = ""
    for part in dsn:
        found, reporting_mta = _dsn_findings(part, text)
        findings += found
        reporting = reporting or reporting_mta
        fmt = "rfc3464"
    if not findings and _jmrp_or_header_abuse(document, parts):
        return _arf_like(document, parts)
    if not findings and _is_dmarc(document, parts):
        return Feedback(
            kind=FeedbackKind.DMARC_REPORT, format="dmarc", provider=_provider(document)
        )
    bounce_like = bool(dsn) or _looks_like_bounce(document)
    if not findings and not bounce_like and _is_auto_reply(document):
        return Feedback(
            kind=FeedbackKind.AUTO_REPLY, format="rfc3834", provider=_provider(document)
        )
    bounce_like = bounce_like or _null_sender(document)
    if not findings:
        returned = _returned_headers(parts)
        if bounce_like or returned is not None:
            findings = _text_findings(
                document, text, returned if bounce_like else None, detectors=detectors
            )
            fmt = _format(text, document)
    if not findings:
        if _is_auto_reply(document):
            return Feedback(kind=FeedbackKind.AUTO_REPLY, format="rfc3834")
        return Feedback(
            kind=FeedbackKind.UNRECOGNIZED,
            header_tokens=tuple(_tokens(document, parts, full_text)),
        )
    if fmt == "rfc3464":
        fmt = "rfc3464" if not text else f"rfc3464/{_format(text, document)}"
    refusals = [f for f in findings if f.action not in ("delivered", "relayed", "expanded")]
    kind = FeedbackKind.BOUNCE if refusals else FeedbackKind.DELIVERED
    domain = findings[0].recipient.rpartition("@")[2]
    return Feedback(
        kind=kind,
        findings=tuple(findings),
        format=fmt,
        provider=domain[:100],
        header_tokens=tuple(_tokens(document, parts, full_text)),
    )


def _arf_like(document: Message, parts: list[Part]) -> Feedback:
    returned = _returned_headers(parts)
    recipients: list[str] = []
    if returned is not None:
        recipients = _header_addresses(returned, "X-HmXmrOriginalRecipient") or _header_addresses(
            returned, "To"
        )
    return Feedback(
        kind=FeedbackKind.COMPLAINT,
        format="jmrp"
        if returned is not None and returned.get("X-HmXmrOriginalRecipient")
        else "abuse",
        provider=_provider(document),
        feedback_type="abuse",
        header_tokens=tuple(_tokens(document, parts, "")),
        complained_recipients=tuple(dict.fromkeys(recipients)),
    )
