"""The send pipeline: one bounded batch of one campaign (DESIGN.md §5).

Per batch: claim rows (``campaigns/sending/queue.py``) → one audited PHI access → decrypt
only the fields the template uses → per chunk: render, clean, track, choose channel,
build MIME bytes, DKIM-sign (all before anything is marked) → mark the chunk
``sending`` → transmit over a pooled connection → write the chunk's outcomes in one
statement. Only a chunk (``LUXMAIL_SEND_CHUNK``, default 20) is ever "in flight", so
a killed worker leaves at most that many ``unknown`` messages behind.

The compiled template, DKIM signer and sender details are prepared once per campaign
and worker process (:func:`prepare`).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django.db import connection as db_connection
from django.db import connection as own
from django.utils import timezone

from campaigns.content import fields, htmlmail, splice, templating
from campaigns.content.context import recipients as load_recipients
from campaigns.models import Campaign, CampaignStatus, MessageState, SenderIdentity
from campaigns.secure.errors import EncryptionError
from campaigns.senders import signing
from campaigns.sending import bounces, channels, hooks, mail, queue, tokens
from campaigns.sending.direct import DirectConnections
from campaigns.sending.transport import (
    Connection,
    Outcome,
    RelayConfig,
    TlsSession,
    TransportError,
    pool,
)
from luxmail import conf, crypto, org
from luxmail.models import SecurePolicy

logger = logging.getLogger(__name__)


class SendRefused(Exception):
    """The campaign cannot be sent as configured (e.g. no DKIM key); user-facing text."""


@dataclass
class Prepared:
    campaign_id: int
    compiled: templating.CompiledTemplate
    # True when the HTML template itself was cleaned and inlined (see prepare()).
    html_prepared: bool
    fields: set[tuple[str, str]]
    phi_bearing: bool
    policy: str
    sender_name: str
    sender_email: str
    reply_to: str
    return_domain: str
    message_domain: str
    signer: signing.Signer | None
    org_context: dict[str, str]
    track_opens: bool
    track_clicks: bool
    marketing_id: str
    # Show the real subject outside S/MIME/PGP mail of a PHI-bearing template.
    encrypted_subject_visible: bool = False
    # Fields the template prints without a default or an if: a recipient without a
    # value for one of them is skipped, never sent a sentence with a hole.
    required: list[tuple[str, str]] = field(default_factory=list)
    # The HTML part with click/open tracking applied once (channels.tracked_html), or
    # None: each message is then tracked after rendering.
    tracked_html: splice.SplicedPart | None = None
    # Quiet hours hold its messages (marketing without a delivery plan's opt-out).
    quiet_hours: bool = False
    # The header fields and MIME boundary every message of the campaign shares.
    fixed: mail.Fixed = field(init=False)

    def __post_init__(self) -> None:
        self.fixed = mail.Fixed.of(
            from_name=self.sender_name,
            from_email=self.sender_email,
            reply_to=self.reply_to,
            feedback_id=self.feedback_id,
        )

    @property
    def feedback_id(self) -> str:
        return f"{self.campaign_id}:{self.marketing_id or 'campaign'}:luxmail"


_prepared: OrderedDict[tuple[int, str], Prepared] = OrderedDict()


# Loaded DKIM signers by sender identity and sealed key (see _signer).
_signers: OrderedDict[tuple[object, ...], signing.Signer] = OrderedDict()
_SIGNERS_KEPT = 16


def _signer(sender: SenderIdentity) -> signing.Signer | None:
    if not sender.has_dkim:
        if sender.allow_without_dkim:
            return None
        raise SendRefused(
            f"Sender identity '{sender.name}' has no DKIM key; generate one or have an "
            "Admin allow sending without DKIM."
        )
    # Loading a PEM key checks it (an RSA-2048 key: tens of milliseconds), once per
    # campaign and process without this; the sealed envelope names the key version.
    key = (
        sender.pk,
        bytes(sender.dkim_private_key),
        sender.dkim_domain,
        sender.dkim_selector,
        sender.dkim_algorithm,
    )
    signer = _signers.get(key)
    if signer is not None:
        _signers.move_to_end(key)
        return signer
    pem = crypto.reveal(sender, "dkim_private_key", access=crypto.secret_access("dkim.sign"))
    signer = signing.Signer(
        domain=sender.dkim_domain,
        selector=sender.dkim_selector,
        algorithm=sender.dkim_algorithm,
        private_pem=pem,
    )
    _signers[key] = signer
    while len(_signers) > _SIGNERS_KEPT:
        _signers.popitem(last=False)
    return signer


def prepare(campaign: Campaign, *, cache: bool = True) -> Prepared:
    """The campaign's compiled template and signing material (cached per process)."""
    key = (campaign.pk, f"{campaign.started_at}|{campaign.sender_id}")
    cached = _prepared.get(key) if cache else None
    if cached is not None:
        _prepared.move_to_end(key)
        return cached
    sender = campaign.sender
    if sender is None:
        raise SendRefused("The campaign has no sender identity.")
    analysis = templating.validate(
        subject=campaign.frozen_subject, html=campaign.frozen_html, text=campaign.frozen_text
    )
    settings_row = org.get_settings()
    from_domain = sender.from_email.rpartition("@")[2]
    # Clean and inline the template once when that is provably the same as doing it for
    # every message (htmlmail.prepare_template_html); otherwise per message.
    html_source = htmlmail.prepare_template_html(campaign.frozen_html)
    prepared = Prepared(
        campaign_id=campaign.pk,
        compiled=templating.CompiledTemplate(
            subject=campaign.frozen_subject,
            html=html_source or campaign.frozen_html,
            text=campaign.frozen_text,
        ),
        html_prepared=html_source is not None,
        fields=analysis.fields,
        phi_bearing=campaign.frozen_phi_bearing,
        policy=campaign.secure_policy,
        sender_name=sender.from_name,
        sender_email=sender.from_email,
        reply_to=sender.reply_to,
        return_domain=sender.bounce_domain or sender.dkim_domain or from_domain,
        message_domain=sender.dkim_domain or from_domain,
        signer=_signer(sender),
        org_context={
            "name": settings_row.name,
            "postal_address": sender.postal_address or settings_row.postal_address,
            "footer_text": settings_row.footer_text,
        },
        track_opens=campaign.track_opens,
        track_clicks=campaign.track_clicks,
        marketing_id=campaign.marketing_id,
        encrypted_subject_visible=campaign.encrypted_subject_visible,
        required=fields.required_fields(
            subject=campaign.frozen_subject, html=campaign.frozen_html, text=campaign.frozen_text
        ),
        quiet_hours=gate.applies(campaign) if (gate := hooks.quiet_gate()) else False,
    )
    if prepared.html_prepared:
        prepared.tracked_html = channels.tracked_html(
            prepared.compiled.html_part(),
            campaign_id=campaign.pk,
            clicks=campaign.track_clicks,
            opens=campaign.track_opens,
        )
    if not cache:
        return prepared
    _prepared[key] = prepared
    while len(_prepared) > 16:
        _prepared.popitem(last=False)
    return prepared


def unsubscribe_url(message_id: int) -> str:
    return f"{settings.LUXMAIL_BASE_URL}/u/{tokens.make(tokens.UNSUBSCRIBE, message_id)}/"


def preferences_url(message_id: int) -> str:
    return unsubscribe_url(message_id) + "preferences/"


STAGES = ("render", "build", "sign", "transmit", "bookkeeping")
_COMPOSE = ("render", "build", "sign")


class Stages:
    """The worker CPU time of a send per stage of the path: ``render`` (tokens,
    template, tracking, channel), ``build`` (MIME bytes, encryption), ``sign`` (DKIM),
    ``transmit`` (SMTP), ``bookkeeping`` (claims, decryption, status writes).

    Each chunk's steps are timed with this thread's CPU time (waiting on the relay or
    the database counts nothing). Inside a chunk's composition the three per-message
    stages are told apart by the cheap monotonic clock — reading the thread's CPU clock
    is a system call, too dear to make three times per message — and the composition's
    CPU time is shared between them in that proportion (:meth:`seconds`)."""

    def __init__(self) -> None:
        self._cpu = dict.fromkeys((*STAGES, "compose"), 0.0)
        self._wall = dict.fromkeys(_COMPOSE, 0.0)
        self._mark = time.thread_time()
        self._tick = time.perf_counter()

    def restart(self) -> None:
        """Start counting from now (what ran since the last lap is not counted)."""
        self._mark = time.thread_time()

    def lap(self, stage: str) -> None:
        """Charge the CPU time since the last lap to ``stage`` (or ``compose``)."""
        now = time.thread_time()
        self._cpu[stage] += now - self._mark
        self._mark = now
        self._tick = time.perf_counter()

    def tick(self, stage: str) -> None:
        """Inside a composition: charge the wall time since the last tick to ``stage``."""
        now = time.perf_counter()
        self._wall[stage] += now - self._tick
        self._tick = now

    def seconds(self) -> dict[str, float]:
        """CPU seconds per stage."""
        result = {stage: self._cpu[stage] for stage in STAGES}
        wall = sum(self._wall.values())
        for stage in _COMPOSE:
            share = self._wall[stage] / wall if wall else 1 / len(_COMPOSE)
            result[stage] += self._cpu["compose"] * share
        return result


@dataclass
class Built:
    message_id: int
    recipient: str
    mail_from: str
    data: bytes
    channel: channels.ChannelDecision


def build_one(
    prepared: Prepared,
    *,
    message_id: int,
    email: str,
    context: dict[str, Any],
    contact_id: int | None,
    relay_security: str,
    secure: channels.SecureContext | None = None,
    stages: Stages | None = None,
) -> Built:
    """Render and assemble one signed message (raises RenderError/ChannelRefused/
    ChannelDeferred). The channel decides what travels: the message (TLS), the message
    encrypted to the contact's certificate or key, or a portal notice without PHI."""
    unsubscribe = unsubscribe_url(message_id)
    bounce_token = tokens.make(tokens.BOUNCE, message_id)
    full_context = {
        **context,
        "org": prepared.org_context,
        "unsubscribe_url": unsubscribe,
        "preferences_url": unsubscribe + "preferences/",
    }
    # Tracking applied once per template: only the tokens are made per message.
    tracked = prepared.tracked_html if message_id > 0 else None
    marks = (
        channels.tracking_marks(tracked, message_id=message_id, campaign_id=prepared.campaign_id)
        if tracked is not None
        else None
    )
    rendered = prepared.compiled.render(
        full_context, html_part=tracked if marks is not None else None, marks=marks
    )
    linked_html: str | None
    if rendered.html_from_part:
        html = rendered.html
        linked_html = None  # made only for the portal (below)
    else:
        html = rendered.html if prepared.html_prepared else htmlmail.prepare_html(rendered.html)
        html = channels.rewrite_links(
            html,
            message_id=message_id,
            campaign_id=prepared.campaign_id,
            enabled=prepared.track_clicks,
        )
        linked_html = html  # the portal copy: no open pixel (a verified read is the open)
        html = channels.open_pixel(
            html,
            message_id=message_id,
            campaign_id=prepared.campaign_id,
            enabled=prepared.track_opens,
        )
    sample = message_id <= 0  # a test send renders sample data, never a person's PHI
    decision = channels.channel_choose(
        policy=SecurePolicy.OPPORTUNISTIC if sample else prepared.policy,
        phi_bearing=False if sample else prepared.phi_bearing,
        contact_id=contact_id,
        relay_security=relay_security,
        email=email,
        secure=secure,
    )

    def envelope(subject: str, html: str, text: str) -> mail.Built:
        return mail.build_with(
            prepared.fixed,
            to_email=email,
            subject=subject,
            html=html,
            text=text,
            message_id=f"<{bounce_token}.{prepared.campaign_id}@{prepared.message_domain}>",
            list_unsubscribe=unsubscribe,
        )

    def portal() -> mail.Built:
        linked = linked_html
        if linked is None:
            assert tracked is not None
            linked = tracked.render(
                full_context,
                channels.tracking_marks(
                    tracked, message_id=message_id, campaign_id=prepared.campaign_id, pixel=False
                ),
            )
            assert linked is not None  # the same values spliced a moment ago
        notice = channels.portal_notice(
            message_id=message_id,
            campaign_id=prepared.campaign_id,
            contact_id=contact_id,
            email=email,
            subject=rendered.subject,
            html=linked,
            text=rendered.text,
            secure=secure,
            unsubscribe_url=unsubscribe,
        )
        return envelope(*notice)

    if stages is not None:
        stages.tick("render")
    if decision.channel == channels.PORTAL:
        built: mail.Built | bytes = portal()
    else:
        built = envelope(rendered.subject, html, rendered.text)
        if decision.channel in (channels.SMIME, channels.PGP):
            hide_subject = prepared.phi_bearing and not prepared.encrypted_subject_visible
            try:
                built = channels.secure_payload(
                    decision,
                    built.message(),
                    outer_subject=(secure.encrypted_subject if secure else "Secure message")
                    if hide_subject
                    else None,
                    signer=secure.signer(decision.channel) if secure else None,
                )
            except EncryptionError:
                # The key passed validation but cannot encrypt now: the portal, never clear.
                decision = channels.ChannelDecision(
                    channels.PORTAL,
                    "encryption to the recipient's key failed; secure portal used",
                    route=decision.route,
                )
                built = portal()
    if stages is not None:
        stages.tick("build")
    if isinstance(built, bytes):  # encrypted (S/MIME, PGP): signed from its bytes
        data = prepared.signer.sign(built) if prepared.signer is not None else built
    else:
        head = built.head()
        signature = b""
        if prepared.signer is not None:
            signature = prepared.signer.header_text(built.fields, built.body)
        data = b"".join((signature, head, b"\r\n", built.body))
    if stages is not None:
        stages.tick("sign")
    mail_from = f"bounces+{bounce_token}@{prepared.return_domain}"
    return Built(message_id, email, mail_from, data, decision)


@dataclass
class BatchReport:
    claimed: int = 0
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    unknown: int = 0
    skipped: int = 0
    # Claimed inside quiet hours in the recipient's zone and given back until their end.
    held: int = 0
    stopped: str = ""
    wait_until: datetime | None = None
    counts: dict[str, int] = field(default_factory=dict)


def backoff(attempts: int) -> timedelta:
    """Delay before the next try after ``attempts`` tries: 1, 2, 4 … minutes, at most 6 h."""
    base = conf.send_retry_base_seconds()
    return timedelta(seconds=min(base * 2 ** max(attempts - 1, 0), 6 * 3600))


def _deferred_or_failed(attempts: int, outcome: Outcome) -> tuple[str, datetime | None]:
    if attempts >= conf.send_max_attempts():
        return MessageState.FAILED, None
    return MessageState.DEFERRED, timezone.now() + backoff(attempts)


class Heartbeat:
    """Renews a batch's leases from a thread while it works (claimed rows, rows in
    flight, and the chain's slot), so leases can be short — a dead worker's rows are
    reclaimed within ``LUXMAIL_SEND_LEASE_SECONDS`` — while a slow SMTP server never
    makes a live batch lose them. Uses its own database connection.
    """

    def __init__(
        self,
        *,
        token: Any,
        lease: int,
        campaign_id: int,
        chain: tuple[int, Any] | None,
        ids: list[int],
    ) -> None:
        self.token, self.lease, self.campaign_id, self.chain = token, lease, campaign_id, chain
        self.ids = ids  # the batch's rows: renewed by primary key
        self.superseded = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="send-heartbeat", daemon=True)

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        try:
            while not self._stop.wait(max(self.lease / 3, 0.5)):
                try:
                    queue.renew_batch(token=self.token, lease_seconds=self.lease, ids=self.ids)
                    if self.chain is not None and not queue.chain_renew(
                        campaign_id=self.campaign_id,
                        slot=self.chain[0],
                        token=self.chain[1],
                        seconds=self.lease,
                    ):
                        self.superseded = True
                except DatabaseError as error:
                    logger.warning("send heartbeat failed (%s)", error.__class__.__name__)
        finally:
            own.close()


def send_batch(
    *,
    campaign_id: int,
    limit: int | None = None,
    config: RelayConfig | None = None,
    on_chunk: Callable[[int], None] | None = None,
    chain: tuple[int, Any] | None = None,
    stages: Stages | None = None,
    overlap: bool = True,
) -> BatchReport:
    """Claim and send one bounded batch of ``campaign_id``; idempotent and resumable.

    ``chain`` is the (slot, token) of the dispatch chain running it: the heartbeat
    renews that slot, and the batch stops (``stopped="superseded"``) once another chain
    took it over. Returns what happened; never raises for per-message problems (they
    become message states). Raises :class:`SendRefused` when the campaign cannot be
    sent at all. ``stages`` (benchmarks, profiling) collects the worker CPU time per
    stage of the send path; without it nothing is measured. ``overlap=False`` (benchmarks
    comparing the two) runs the chunk loop serially: compose, mark, transmit, compose …
    """
    report = BatchReport()
    if stages is not None:
        stages.restart()
    campaign = Campaign.objects.select_related("sender").get(pk=campaign_id)
    if campaign.status != CampaignStatus.SENDING:
        report.stopped = campaign.status
        return report
    config = config or RelayConfig.from_settings()
    lease = conf.send_lease_seconds()
    chunk_size = conf.send_chunk()
    if limit is None:
        limit = conf.send_batch()
        if campaign.throttle_per_minute:
            # A chain claims at most its share of one minute of the throttle: a larger
            # batch would go out as one burst and then wait (pace() spaces batches).
            limit = min(limit, max(1, campaign.throttle_per_minute // conf.send_chains()))
    prepared = prepare(campaign)
    token, claimed = queue.claim(
        campaign_id=campaign_id,
        limit=limit,
        lease_seconds=lease,
        purpose="transactional"
        if campaign.transactional
        else "phi_marketing"
        if prepared.phi_bearing
        else "marketing",
    )
    report.claimed = len(claimed)
    Campaign.objects.filter(pk=campaign_id).update(last_batch_at=timezone.now())
    if not claimed:
        report.wait_until = queue.next_due(campaign_id=campaign_id)
        return report
    skipped = [c for c in claimed if c.blocked]
    if skipped:
        queue.write_results(
            token=token,
            results=[
                queue.Result(
                    c.id, MessageState.SKIPPED, reply="suppressed, unsubscribed or no consent"
                )
                for c in skipped
            ],
        )
        report.skipped = len(skipped)
    live = [c for c in claimed if not c.blocked]
    if live and prepared.quiet_hours:
        live, report.held = _hold_quiet(token, live)
    if not live:
        return report
    access = crypto.phi_access(
        actor=None,
        purpose="campaign.send",
        target=campaign,
        details={"messages": len(live)},
    )
    people = load_recipients(
        [c.contact_id for c in live if c.contact_id is not None],
        fields=prepared.fields,
        access=access,
    )
    secure = channels.SecureContext.load(
        emails={contact_id: person.email for contact_id, person in people.items()},
        access=access,
    )
    direct = DirectConnections() if secure.direct else None
    # Inside a transaction (the in-process tests) another connection could not see the
    # rows, so there is no heartbeat: the batch runs well within its lease there.
    heartbeat = (
        None
        if db_connection.in_atomic_block
        else Heartbeat(
            token=token, lease=lease, campaign_id=campaign_id, chain=chain, ids=[c.id for c in live]
        ).start()
    )
    # Chunk N+1 is composed (CPU) while chunk N is marked and transmitted (waits on
    # PostgreSQL's durable commit and on the relay) by the batch's transmitting thread,
    # which owns the SMTP session and its own database connection (:class:`_Wire`).
    # Serial in a transaction (tests; another connection could not see the rows) and
    # when ``stages`` measures CPU per stage (thread CPU clocks).
    wire = _Wire(
        token=token,
        campaign_id=campaign_id,
        config=config,
        direct=direct,
        lease=lease,
        threaded=overlap and heartbeat is not None and stages is None,
        stages=stages,
    )
    renewed_at = time.monotonic()
    done = 0
    pending: list[queue.Result] = []  # outcomes written together with the next mark
    # Exactly one chunk is ever marked and on the wire: the next is only composed.
    upcoming: tuple[int, list[queue.Claimed], list[queue.Result], list[Built]] | None = None
    try:
        for start in range(0, len(live), chunk_size):
            if heartbeat is not None and heartbeat.superseded:
                report.stopped = "superseded"
                break
            if upcoming is None:
                upcoming = _compose(
                    prepared, live, start, chunk_size, people, config, secure, stages
                )
            _, chunk, results, ready = upcoming
            upcoming = None
            renew = None
            if ready and time.monotonic() - renewed_at > lease / 3:
                renew = [c.id for c in live[start + chunk_size :]]
                renewed_at = time.monotonic()
            wire.submit(_Job(pending, chunk, results, ready, renew, start + len(chunk)))
            if start + chunk_size < len(live):
                # Overlaps the chunk on the wire (its waits release the GIL).
                upcoming = _compose(
                    prepared, live, start + chunk_size, chunk_size, people, config, secure, stages
                )
            step = wire.wait()
            # Written by the step (kept until here: if it raised, the finally writes them).
            pending = []
            if step.lost:
                # Paused or cancelled, or this batch's lease ran out (the rows may belong
                # to another worker now): either way, nothing more of this batch is sent.
                report.stopped = step.lost
                break
            if step.unavailable:
                report.stopped = "relay unavailable"
            results = step.results
            pending = results
            done = step.done
            _tally(report, results)
            if on_chunk is not None:
                on_chunk(len(results))
            if report.stopped:
                break
    finally:
        # A chunk still on the wire (the composition of the next one raised): its
        # outcomes are written like any other before the batch's rows are released.
        leftover = wire.finish()
        if leftover is not None and not leftover.lost:
            pending = leftover.results
            done = leftover.done
        if heartbeat is not None:
            heartbeat.stop()
        if direct is not None:
            direct.close()
        if pending:
            queue.write_results(token=token, results=pending, durable=False)
        queue.release(token=token, ids=[c.id for c in live[done:]])
        if stages is not None:
            stages.lap("bookkeeping")
    return report


def _hold_quiet(token: Any, live: list[queue.Claimed]) -> tuple[list[queue.Claimed], int]:
    """Give back the rows whose recipient's zone is inside quiet hours now, not before
    their end there; returns the rest and how many were held. The zones are judged once
    per batch (its distinct zone names), the rows moved with one UPDATE per end time."""
    gate = hooks.quiet_gate()
    if gate is None:
        return live, 0
    # A generator: with quiet hours off the rows are not even looked at.
    quiet = gate.releases((c.time_zone for c in live), now=timezone.now())
    if not quiet:
        return live, 0
    until: dict[datetime, list[int]] = {}
    keep: list[queue.Claimed] = []
    for row in live:
        moment = quiet.get(row.time_zone)
        if moment is None:
            keep.append(row)
        else:
            until.setdefault(moment, []).append(row.id)
    return keep, queue.hold(token=token, until=until)


def _compose(
    prepared: Prepared,
    live: list[queue.Claimed],
    start: int,
    size: int,
    people: dict[int, Any],
    config: RelayConfig,
    secure: channels.SecureContext | None,
    stages: Stages | None,
) -> tuple[int, list[queue.Claimed], list[queue.Result], list[Built]]:
    chunk = live[start : start + size]
    if stages is not None:
        stages.lap("bookkeeping")
    results, ready = _build_chunk(prepared, chunk, people, config, secure, stages)
    if stages is not None:
        stages.lap("compose")
    return start, chunk, results, ready


# Seconds a thread holding the GIL keeps it while another waits (see _Wire).
WIRE_SWITCH_INTERVAL = 0.0005


@dataclass
class _Job:
    """One chunk for the wire: the previous chunk's outcomes to write with its mark."""

    pending: list[queue.Result]
    chunk: list[queue.Claimed]
    results: list[queue.Result]
    ready: list[Built]
    renew: list[int] | None
    done: int  # index in the batch after this chunk


@dataclass
class _Step:
    """What the transmitting side did with one chunk."""

    results: list[queue.Result] = field(default_factory=list)
    lost: str = ""  # "paused" or "lease lost": the chunk was not marked, nothing sent
    unavailable: bool = False  # no session to the relay could be opened
    done: int = 0  # index in the batch after this chunk (finish())


def _wire_executor() -> ThreadPoolExecutor:
    """The worker process's transmitting thread: one, kept across batches, so its
    database connection is kept too (``CONN_MAX_AGE``, health-checked before each batch)
    — a new connection per batch cost a server process start-up and a cold catalog and
    plan cache per 500 messages. Made in the process that uses it (Celery's pool
    processes are forked; threads do not survive a fork)."""
    global _WIRE_EXECUTOR
    pid = os.getpid()
    if _WIRE_EXECUTOR is None or _WIRE_EXECUTOR[0] != pid:
        _WIRE_EXECUTOR = (pid, ThreadPoolExecutor(max_workers=1, thread_name_prefix="send-wire"))
    return _WIRE_EXECUTOR[1]


_WIRE_EXECUTOR: tuple[int, ThreadPoolExecutor] | None = None


def _refresh_connection() -> None:
    # Run on the transmitting thread: ``own`` must be resolved there, to that thread's
    # connection (a bound method taken in the caller's thread would close the caller's).
    own.close_if_unusable_or_obsolete()


class _Wire:
    """Marks and transmits a batch's chunks one at a time, in order: inline, or on the
    process's transmitting thread (:func:`_wire_executor`) so the caller composes the
    next chunk meanwhile.

    Per chunk, as before: one ``queue.step`` statement (the previous chunk's outcomes and
    this chunk's durable ``sending`` mark, refused when the campaign stopped or the
    lease is gone), then exactly the rows it marked go on the wire. :meth:`wait`
    returns the chunk's outcomes, which the caller hands to the next :meth:`submit` —
    so at most one chunk is ever marked ``sending`` and unanswered. The thread uses its
    own database connection and the pooled SMTP session.
    """

    def __init__(
        self,
        *,
        token: Any,
        campaign_id: int,
        config: RelayConfig,
        direct: DirectConnections | None,
        lease: int,
        threaded: bool,
        stages: Stages | None = None,
    ) -> None:
        self.token, self.campaign_id, self.config = token, campaign_id, config
        self.direct, self.lease = direct, lease
        self.connection: Connection | None = None
        self._step: _Step | None = None  # serial
        self._future: Future[_Step] | None = None  # threaded
        self._executor: ThreadPoolExecutor | None = None
        # CPU per stage is read from the calling thread's clock: serial only.
        self._stages = None if threaded else stages
        if threaded:
            # The wire thread needs the GIL for a moment after each wait (a commit, a
            # reply); the composing thread would keep it up to the interpreter's switch
            # interval (5 ms) each time — as long as composing a few messages. A short
            # interval only costs when a thread is waiting for the GIL, i.e. here.
            if sys.getswitchinterval() > WIRE_SWITCH_INTERVAL:
                sys.setswitchinterval(WIRE_SWITCH_INTERVAL)
            self._executor = _wire_executor()
            self._executor.submit(_refresh_connection).result()

    def submit(self, job: _Job) -> None:
        if self._executor is None:
            self._step = self._run(job)  # serial: done before the next composition
            return
        self._future = self._executor.submit(self._run, job)

    def wait(self) -> _Step:
        if self._executor is None:
            step, self._step = self._step, None
        else:
            future, self._future = self._future, None
            assert future is not None
            step = future.result()
        assert step is not None
        return step

    def finish(self) -> _Step | None:
        """Wait for a chunk still on the wire and release the SMTP session; returns that
        chunk's outcomes (None when there is none, or it raised)."""
        leftover, self._step = self._step, None
        if self._future is not None:
            future, self._future = self._future, None
            try:
                leftover = future.result()
            except Exception:  # the caller is already handling the error that stopped it
                leftover = None
        if self.connection is not None:
            pool().release(self.connection)
            self.connection = None
        return leftover

    def _run(self, job: _Job) -> _Step:
        chunk, ready = job.chunk, job.ready
        step = _Step(results=list(job.results), done=job.done)
        if any(b.channel.route is None for b in ready) and self.connection is None:
            try:
                self.connection = pool().acquire(self.config)
            except TransportError as error:
                step.results += _defer_all(ready, chunk, str(error), not error.transient)
                ready = []
                step.unavailable = True
        # One transaction: the previous chunk's outcomes and this chunk's 'sending'
        # mark, which is refused when the campaign is no longer sending.
        marked = queue.step(
            token=self.token,
            campaign_id=self.campaign_id,
            results=job.pending,
            sending=[b.message_id for b in ready],
            lease_seconds=self.lease,
            renew=job.renew,
        )
        if ready and not marked:
            step.lost = "paused" if _paused(self.campaign_id) else "lease lost"
            step.results = []
            return step
        if ready:
            # Exactly the rows the database let this batch mark, nothing else.
            allowed = set(marked)
            ready = [b for b in ready if b.message_id in allowed]
            if self._stages is not None:
                self._stages.lap("bookkeeping")
            self.connection, sent_results, refusals = _transmit(
                self.connection, ready, chunk, self.config, self.direct
            )
            if self._stages is not None:
                self._stages.lap("transmit")
            step.results += sent_results
            for message_id, outcome in refusals:
                bounces.refusal_record(
                    message_id=message_id, code=outcome.code or 550, reply=outcome.reply
                )
        return step


def _paused(campaign_id: int) -> bool:
    return not Campaign.objects.filter(pk=campaign_id, status=CampaignStatus.SENDING).exists()


def _tally(report: BatchReport, results: list[queue.Result]) -> None:
    for result in results:
        report.counts[result.state] = report.counts.get(result.state, 0) + 1
        if result.state == MessageState.SENT:
            report.sent += 1
        elif result.state == MessageState.DEFERRED:
            report.deferred += 1
        elif result.state == MessageState.UNKNOWN:
            report.unknown += 1
        elif result.state in (MessageState.FAILED, MessageState.SKIPPED):
            report.failed += 1


def _build_chunk(
    prepared: Prepared,
    chunk: list[queue.Claimed],
    people: dict[int, Any],
    config: RelayConfig,
    secure: channels.SecureContext | None = None,
    stages: Stages | None = None,
) -> tuple[list[queue.Result], list[Built]]:
    results: list[queue.Result] = []
    ready: list[Built] = []
    for claimed in chunk:
        person = people.get(claimed.contact_id) if claimed.contact_id is not None else None
        if person is None:
            results.append(queue.Result(claimed.id, MessageState.SKIPPED, reply="contact deleted"))
            continue
        blank = fields.missing(person.context, prepared.required)
        if blank:
            results.append(
                queue.Result(claimed.id, MessageState.SKIPPED, reply=fields.skip_reason(blank))
            )
            continue
        try:
            ready.append(
                build_one(
                    prepared,
                    message_id=claimed.id,
                    email=person.email,
                    context=person.context,
                    contact_id=claimed.contact_id,
                    relay_security=config.security,
                    secure=secure,
                    stages=stages,
                )
            )
        except channels.ChannelDeferred as error:
            state, next_at = _deferred_or_failed(
                claimed.attempts + 1, Outcome("transient", None, str(error))
            )
            results.append(
                queue.Result(
                    claimed.id,
                    state,
                    reply="destination could not be assessed; nothing sent",
                    next_attempt_at=next_at,
                    channel_reason=str(error),
                    bump=1,
                )
            )
        except templating.TemplateError as error:
            results.append(
                queue.Result(claimed.id, MessageState.FAILED, reply=f"template: {error}"[:480])
            )
        except channels.ChannelRefused as error:
            results.append(
                queue.Result(
                    claimed.id,
                    MessageState.FAILED,
                    reply="no permitted channel",
                    channel_reason=str(error),
                )
            )
    return results, ready


def _defer_all(
    ready: list[Built], chunk: list[queue.Claimed], reason: str, permanent: bool
) -> list[queue.Result]:
    attempts = {c.id: c.attempts + 1 for c in chunk}
    results = []
    for built in ready:
        outcome = Outcome("permanent" if permanent else "transient", None, reason)
        # Nothing was transmitted, but the try counts (bump), so a relay that stays
        # unusable ends in "failed" after LUXMAIL_SEND_MAX_ATTEMPTS instead of forever.
        state, next_at = _deferred_or_failed(attempts[built.message_id], outcome)
        if permanent:
            state, next_at = MessageState.FAILED, None
        results.append(
            queue.Result(
                built.message_id,
                state,
                reply=reason[:480],
                next_attempt_at=next_at,
                channel=built.channel.channel,
                channel_reason=built.channel.reason,
                bump=1,
            )
        )
    return results


def _transmit(
    connection: Connection | None,
    ready: list[Built],
    chunk: list[queue.Claimed],
    config: RelayConfig,
    direct: DirectConnections | None = None,
) -> tuple[Connection | None, list[queue.Result], list[tuple[int, Outcome]]]:
    """Send ``ready``; returns the connection, the outcomes, and the recipients refused
    with a 5xx at RCPT or DATA (bounces, recorded like a DSN by the caller).

    Messages for the relay go through :meth:`Connection.send_many` (pipelined across
    messages when the relay offers PIPELINING); when the session breaks, the messages
    it did not reach are sent over a new one."""
    attempts = {c.id: c.attempts + 1 for c in chunk}
    results: list[queue.Result] = []
    refusals: list[tuple[int, Outcome]] = []
    current: Connection | None = connection

    def record(built: Built, outcome: Outcome, session: TlsSession | None = None) -> None:
        results.append(_result(built, outcome, attempts[built.message_id], session))
        if _refused(outcome):
            refusals.append((built.message_id, outcome))

    relayed: list[Built] = []
    for built in ready:
        route = built.channel.route
        if route is not None and direct is not None:
            record(
                built,
                direct.send(
                    route, mail_from=built.mail_from, recipient=built.recipient, data=built.data
                ),
                direct.session(route),
            )
        else:
            relayed.append(built)
    while relayed:
        if current is None or current.broken:
            if current is not None:
                current.close()
            try:
                current = pool().acquire(config)
            except TransportError as error:
                current = None
                outcome = Outcome("transient" if error.transient else "permanent", None, str(error))
                record(relayed.pop(0), outcome)
                continue
        outcomes = current.send_many([(b.mail_from, b.recipient, b.data) for b in relayed])
        for built, outcome in zip(relayed, outcomes, strict=False):
            record(built, outcome, current.session)
        relayed = relayed[len(outcomes) :]
    return current, results, refusals


def _refused(outcome: Outcome) -> bool:
    """A permanent refusal of this recipient or message (not of our sender at MAIL)."""
    return outcome.kind == "permanent" and outcome.stage in ("RCPT", "DATA")


def _result(
    built: Built, outcome: Outcome, attempts: int, session: TlsSession | None = None
) -> queue.Result:
    next_at = None
    state: str
    if outcome.kind == "sent":
        state = MessageState.SENT
    elif outcome.kind == "ambiguous":
        state = MessageState.UNKNOWN
    elif outcome.kind == "transient":
        state, next_at = _deferred_or_failed(attempts, outcome)
    elif _refused(outcome):
        # Bounced (address-level, 5.1.x) or failed, by the same rule as a DSN.
        state = bounces.sync_state(code=outcome.code, reply=outcome.reply) or MessageState.FAILED
    else:
        state = MessageState.FAILED
    return queue.Result(
        built.message_id,
        state,
        code=outcome.code,
        reply=outcome.reply,
        next_attempt_at=next_at,
        channel=built.channel.channel,
        channel_reason=built.channel.reason,
        session=session if outcome.code is not None else None,  # a server answered
    )


def wait_seconds(report: BatchReport) -> float | None:
    if report.wait_until is None:
        return None
    return max((report.wait_until - timezone.now()).total_seconds(), 0.0)


def pace(*, elapsed: float, sent: int, per_minute: int | None, chains: int) -> float:
    """Seconds to wait before the next batch so ``chains`` chains keep the throttle
    (``sent`` messages took ``elapsed`` seconds in this chain)."""
    if not per_minute or sent <= 0:
        return 0.0
    target = sent * chains * 60.0 / per_minute
    return max(target - elapsed, 0.0)
