"""Campaign lifecycle: create, edit, schedule, start, pause/resume/cancel, finish, resend."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import connection, transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone

from campaigns import jobs
from campaigns.content import templating
from campaigns.content.context import SAMPLE_CONTEXT
from campaigns.content.preheader import with_preheader
from campaigns.models import (
    ABTest,
    ABTestState,
    Campaign,
    CampaignStatus,
    EmailTemplate,
    Message,
    MessageState,
)
from campaigns.scheduling import planner
from campaigns.selectors import audience_queryset, campaign_counts
from campaigns.sending import delivery, queue
from campaigns.sending.transport import RelayConfig, TransportError, pool
from campaigns.services import approvals, locked_footer
from campaigns.services.errors import CampaignError, TransitionError, _user
from campaigns.services.templates import _org, _with_footer
from luxmail import audit, conf, org
from luxmail.actors import Actor
from luxmail.models import SecurePolicy

# --- campaigns -----------------------------------------------------------------------------


def _locked(campaign: Campaign) -> Campaign:
    """The campaign row, locked for this transaction, with its template and sender."""
    return (
        Campaign.objects.select_for_update(of=("self",))
        .select_related("template", "sender")
        .get(pk=campaign.pk)
    )


_AUDIENCE_FIELDS = ("segments", "lists", "exclude_segments", "exclude_lists")
_EDITABLE = (
    "name",
    "marketing_id",
    "report_field",
    "template",
    "sender",
    "preheader",
    "scheduled_at",
    "throttle_per_minute",
    "track_opens",
    "track_clicks",
    "secure_policy",
    "encrypted_subject_visible",
)


def campaign_create(
    *, name: str, actor: Actor, request: HttpRequest | None = None, **fields: Any
) -> Campaign:
    """Create a draft. ``fields`` are the editable attributes and the audience sets.

    The secure policy defaults to the organization's. Audits ``campaign.create``.
    """
    name = " ".join(name.split())
    if not name:
        raise CampaignError("A campaign needs a name.")
    with transaction.atomic():
        campaign = Campaign(
            name=name,
            created_by=_user(actor),
            secure_policy=fields.pop("secure_policy", None) or _org().default_secure_policy,
        )
        audience = {key: fields.pop(key) for key in _AUDIENCE_FIELDS if key in fields}
        _set_fields(campaign, fields)
        campaign.save()
        for key, values in audience.items():
            getattr(campaign, key).set(values)
        audit.record("campaign.create", actor=actor, request=request, target=campaign)
    return campaign


def _set_fields(campaign: Campaign, fields: dict[str, Any]) -> list[str]:
    changed = []
    for key, value in fields.items():
        if key not in _EDITABLE:
            raise CampaignError(f"'{key}' is not a campaign field.")
        if getattr(campaign, key) != value:
            setattr(campaign, key, value)
            changed.append(key)
    if campaign.throttle_per_minute is not None and campaign.throttle_per_minute < 1:
        raise CampaignError("The throttle must be at least 1 message per minute.")
    if campaign.secure_policy not in SecurePolicy.values:
        raise CampaignError("Unknown secure-delivery policy.")
    return changed


def campaign_update(
    *, campaign: Campaign, actor: Actor, request: HttpRequest | None = None, **fields: Any
) -> Campaign:
    """Edit a draft or scheduled campaign. Audits ``campaign.update`` (field names only)."""
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if campaign.status not in (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED):
            raise TransitionError("Only draft or scheduled campaigns can be edited.")
        audience = {key: fields.pop(key) for key in _AUDIENCE_FIELDS if key in fields}
        changed = _set_fields(campaign, fields)
        campaign.save()
        for key, values in audience.items():
            getattr(campaign, key).set(values)
            changed.append(key)
        if changed:
            audit.record(
                "campaign.update",
                actor=actor,
                request=request,
                target=campaign,
                details={"changed": sorted(changed)},
            )
            approvals.approvals_recheck(campaign=campaign, actor=actor, request=request)
    return campaign


def _check_sendable(campaign: Campaign) -> EmailTemplate:
    template = campaign.template
    if template is None:
        raise CampaignError("Choose a template before sending.")
    if campaign.sender is None:
        raise CampaignError("Choose a sender identity before sending.")
    locked_footer.footer_require_for_marketing(campaign)
    if not campaign.sender.has_dkim and not campaign.sender.allow_without_dkim:
        raise CampaignError(
            f"Sender identity '{campaign.sender.name}' has no DKIM key. Generate one, or ask "
            "an Admin to allow sending without DKIM."
        )
    if template.phi_bearing and campaign.secure_policy == SecurePolicy.OPPORTUNISTIC:
        raise CampaignError(
            "This template uses PHI fields, so the campaign needs a secure-delivery policy "
            "(opportunistic TLS is only for templates without PHI)."
        )
    if not (campaign.segments.exists() or campaign.lists.exists()):
        raise CampaignError("Choose at least one segment or list as the audience.")
    return template


def past_time_message(at: datetime) -> str:
    """Why a "Send at" in the past is refused (the form, this service and the API)."""

    local = timezone.localtime(at).strftime("%Y-%m-%d %H:%M")
    now = timezone.localtime().strftime("%Y-%m-%d %H:%M")
    return (
        f"The send time {local} {org.time_zone()} is in the past (it is now {now}). Choose a "
        "later time, or leave it empty to send now."
    )


def campaign_schedule(
    *,
    campaign: Campaign,
    actor: Actor,
    at: datetime | None = None,
    request: HttpRequest | None = None,
) -> Campaign:
    """draft → scheduled (``at`` in the future) or straight to sending (``at`` None).

    A time in the past is refused (:class:`CampaignError`), never taken as "now".
    Audits ``campaign.schedule``; starting audits ``campaign.start``.
    """
    if at is not None and at <= timezone.now():
        raise CampaignError(past_time_message(at))
    # A stale PHI approval is withdrawn (and audited) in its own transaction, before
    # the refusal below rolls this one back.
    approvals.approvals_recheck(campaign=campaign, actor=actor, request=request)
    with transaction.atomic():
        campaign = _locked(campaign)
        if campaign.status not in (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED):
            raise TransitionError("Only a draft or scheduled campaign can be scheduled.")
        _check_sendable(campaign)
        approvals.approval_require(campaign)
        if at is not None and at > timezone.now():
            campaign.status = CampaignStatus.SCHEDULED
            campaign.scheduled_at = at
            campaign.save(update_fields=["status", "scheduled_at", "updated_at"])
            audit.record(
                "campaign.schedule",
                actor=actor,
                request=request,
                target=campaign,
                details={"at": at.isoformat()},
            )
            return campaign
    campaign_start(campaign=campaign, actor=actor, request=request)
    campaign.refresh_from_db()
    return campaign


def _insert_messages(
    campaign: Campaign, *, phi: bool, only: list[int] | None = None, skip: tuple[int, ...] = ()
) -> int:
    queryset = audience_queryset(campaign=campaign, phi=phi)
    if only is not None:  # an A/B variant: its share of the audience
        queryset = queryset.filter(id__in=only)
    if skip:  # an A/B test's winner: not those who had a variant
        queryset = queryset.exclude(
            id__in=Message.objects.filter(campaign_id__in=skip).values("contact_id")
        )
    if connection.vendor == "postgresql":
        # The audience is a Django-compiled query: its SQL has placeholders only, the
        # values travel as bound parameters.
        sql, params = queryset.values("id").query.sql_with_params()
        with connection.cursor() as cursor:
            statement = (
                "INSERT INTO campaigns_message "  # noqa: S608
                "(campaign_id, contact_id, state, attempts, smtp_reply, channel, "
                "channel_reason, queued_at) "
                "SELECT %s, audience.id, 'queued', 0, '', '', '', now() "
                f"FROM ({sql}) audience "
                # No conflict target: on the partitioned table (luxmail/partitions.py)
                # the one-per-contact constraint also holds queued_at; the campaign's
                # lock makes this the only insert of its recipients.
                "ON CONFLICT DO NOTHING"
            )
            cursor.execute(
                statement,
                [campaign.pk, *params],
            )
            return int(cursor.rowcount)
    ids = list(queryset.values_list("id", flat=True))
    Message.objects.bulk_create(
        [Message(campaign=campaign, contact_id=i) for i in ids], ignore_conflicts=True
    )
    return len(ids)


def campaign_start(
    *,
    campaign: Campaign,
    actor: Actor,
    request: HttpRequest | None = None,
    only: list[int] | None = None,
    skip: tuple[int, ...] = (),
    subject: str = "",
) -> int:
    """Freeze the template, snapshot the eligible recipients and start sending.

    A/B tests (``campaigns/services/abtests.py``) narrow the recipients to ``only`` (a
    variant's share) or leave out those of the ``skip`` campaigns (the winner's send to
    the rest), and may replace the template's ``subject``. A campaign under an A/B test
    starts only through the test. Messages get their not-before times from the delivery
    plan (``campaigns/scheduling/planner.py``).

    Inserts one ``Message`` per eligible recipient (audience minus suppressed and no consent:
    ``phi_marketing`` for PHI-bearing templates, ``marketing`` otherwise) in one SQL
    statement, sets ``sending`` and enqueues the send chains on commit. Returns the
    number of recipients. Audits ``campaign.start``. Raises :class:`CampaignError`, and
    :class:`~campaigns.services.approvals.ApprovalRequired` for a PHI campaign without a
    current Compliance Officer approval.
    """
    approvals.approvals_recheck(campaign=campaign, actor=actor, request=request)
    with transaction.atomic():
        campaign = _locked(campaign)
        if campaign.status not in (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED):
            raise TransitionError("This campaign has already started.")
        template = _check_sendable(campaign)
        approvals.approval_require(campaign)
        if (
            not skip
            and ABTest.objects.filter(campaign=campaign)
            .exclude(state__in=(ABTestState.DRAFT, ABTestState.CANCELLED))
            .exists()
        ):
            raise TransitionError(
                "This campaign is under an A/B test: its winner is sent to the rest."
            )
        sources = _with_footer(
            subject=subject or template.subject, html=template.html, text=template.text
        )
        campaign.frozen_subject = sources["subject"]
        campaign.frozen_html = with_preheader(sources["html"], campaign.preheader)
        campaign.frozen_text = sources["text"]
        campaign.frozen_phi_bearing = template.phi_bearing
        count = _insert_messages(campaign, phi=template.phi_bearing, only=only, skip=skip)
        now = timezone.now()
        waiting = planner.messages_schedule(campaign=campaign, now=now)
        campaign.status = CampaignStatus.SENDING
        campaign.started_at = now
        campaign.last_batch_at = now
        campaign.recipients = count
        campaign.save()
        audit.record(
            "campaign.start",
            actor=actor,
            request=request,
            target=campaign,
            details={
                "recipients": count,
                "template_id": template.pk,
                "template_version": template.version,
                "phi_bearing": template.phi_bearing,
                "policy": campaign.secure_policy,
                "waiting_for_local_time": waiting,
            },
        )
        campaign_id = campaign.pk
        transaction.on_commit(lambda: _enqueue_chains(campaign_id))
        if count == 0:
            transaction.on_commit(lambda: campaign_finish_if_done(campaign_id=campaign_id))
    return count


def _enqueue_chains(campaign_id: int, count: int | None = None) -> None:
    """Start up to ``count`` (default: all) chains; each takes a free slot or exits at
    once, so extra starts never run more than ``send_parallelism()`` chains."""
    for _ in range(send_parallelism() if count is None else count):
        jobs.SEND_BATCH.delay(campaign_id)


def send_parallelism() -> int:
    """The configured concurrency of a campaign: its number of chain slots."""
    return conf.send_chains()


def campaign_is_sending(*, campaign_id: int) -> bool:
    return Campaign.objects.filter(pk=campaign_id, status=CampaignStatus.SENDING).exists()


def _transition(
    *,
    campaign: Campaign,
    actor: Actor,
    allowed_from: tuple[str, ...],
    to: str,
    action: str,
    request: HttpRequest | None,
) -> Campaign:
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if campaign.status not in allowed_from:
            raise TransitionError(
                f"A {campaign.get_status_display().lower()} campaign cannot be {action}."
            )
        previous = campaign.status
        campaign.status = to
        if to == CampaignStatus.CANCELLED:
            campaign.finished_at = timezone.now()
        campaign.save(update_fields=["status", "finished_at", "updated_at"])
        cancelled = 0
        if to == CampaignStatus.CANCELLED:
            cancelled = Message.objects.filter(
                campaign=campaign, state__in=queue.CLAIMABLE, claim_token__isnull=True
            ).update(state=MessageState.CANCELLED, finished_at=timezone.now())
        audit.record(
            f"campaign.{action.replace(' ', '_')}",
            actor=actor,
            request=request,
            target=campaign,
            details={"from": previous, "to": to, "cancelled_messages": cancelled},
        )
    return campaign


def campaign_pause(
    *, campaign: Campaign, actor: Actor, request: HttpRequest | None = None
) -> Campaign:
    """sending → paused: workers stop after the chunk in flight. Audits ``campaign.paused``."""
    return _transition(
        campaign=campaign,
        actor=actor,
        allowed_from=(CampaignStatus.SENDING,),
        to=CampaignStatus.PAUSED,
        action="paused",
        request=request,
    )


def campaign_resume(
    *,
    campaign: Campaign,
    actor: Actor,
    request: HttpRequest | None = None,
    confirm: bool = False,
) -> Campaign:
    """paused → sending, and the send chains start again. Audits ``campaign.resumed``.

    A campaign that paused itself on its bounce/complaint rates
    (``auto_pause_reason``) resumes only with ``confirm=True``; its rates then count
    afresh from now (``health_baseline_at``) and the reason is cleared.
    """
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        auto_reason = locked.auto_pause_reason if locked.status == CampaignStatus.PAUSED else ""
        if auto_reason and not confirm:
            raise TransitionError(
                f"This campaign paused itself: {auto_reason} "
                "Confirm that you have looked into it to resume."
            )
        campaign = _transition(
            campaign=locked,
            actor=actor,
            allowed_from=(CampaignStatus.PAUSED,),
            to=CampaignStatus.SENDING,
            action="resumed",
            request=request,
        )
        if auto_reason:
            campaign.auto_pause_reason = ""
            campaign.health_baseline_at = timezone.now()
            campaign.save(update_fields=["auto_pause_reason", "health_baseline_at", "updated_at"])
            audit.record(
                "campaign.auto_pause_confirmed",
                actor=actor,
                request=request,
                target=campaign,
                details={"reason": auto_reason[:200]},
            )
    campaign_id = campaign.pk
    transaction.on_commit(lambda: _enqueue_chains(campaign_id))
    return campaign


def campaign_cancel(
    *, campaign: Campaign, actor: Actor, request: HttpRequest | None = None
) -> Campaign:
    """draft/scheduled/sending/paused → cancelled; unsent messages become ``cancelled``.

    Messages already claimed by a worker finish their chunk (they may be on the wire);
    the worker then releases the rest, which :func:`campaign_finish_if_done` cancels.
    Audits ``campaign.cancelled``.
    """
    campaign = _transition(
        campaign=campaign,
        actor=actor,
        allowed_from=(
            CampaignStatus.DRAFT,
            CampaignStatus.SCHEDULED,
            CampaignStatus.SENDING,
            CampaignStatus.PAUSED,
        ),
        to=CampaignStatus.CANCELLED,
        action="cancelled",
        request=request,
    )
    return campaign


def campaign_halt(*, campaign_id: int, reason: str) -> None:
    """sending → paused by the system when sending is impossible (e.g. DKIM key gone).

    Audits ``campaign.halted`` with the reason (a sentence without PHI).
    """
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign_id)
        if campaign.status != CampaignStatus.SENDING:
            return
        campaign.status = CampaignStatus.PAUSED
        campaign.save(update_fields=["status", "updated_at"])
        audit.record(
            "campaign.halted", actor=None, target=campaign, details={"reason": reason[:200]}
        )


def campaign_finish_if_done(*, campaign_id: int) -> bool:
    """sending → sent once no message is queued, sending or deferred. Idempotent.

    For a cancelled campaign, messages released by workers after the cancel become
    ``cancelled``. Audits ``campaign.sent`` (by the system) with the final counts.
    """
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign_id)
        if campaign.status == CampaignStatus.CANCELLED:
            Message.objects.filter(
                campaign=campaign, state__in=queue.CLAIMABLE, claim_token__isnull=True
            ).update(state=MessageState.CANCELLED, finished_at=timezone.now())
            return False
        if campaign.status != CampaignStatus.SENDING or queue.has_open(campaign_id=campaign_id):
            return False
        campaign.status = CampaignStatus.SENT
        campaign.finished_at = timezone.now()
        campaign.save(update_fields=["status", "finished_at", "updated_at"])

        audit.record(
            "campaign.sent", actor=None, target=campaign, details=campaign_counts(campaign)
        )
    return True


def message_resend(
    *, message: Message, actor: Actor, request: HttpRequest | None = None
) -> Message:
    """Queue an ``unknown`` (or ``failed``) message again, on an operator's decision.

    The operator accepts that an ``unknown`` message may arrive twice. The campaign
    goes back to ``sending`` if it had finished. Audits ``message.resend``.
    """
    with transaction.atomic():
        message = Message.objects.select_for_update().get(pk=message.pk)
        if message.state not in (MessageState.UNKNOWN, MessageState.FAILED):
            raise TransitionError("Only messages whose outcome is unknown or failed can be resent.")
        campaign = Campaign.objects.select_for_update().get(pk=message.campaign_id)
        if campaign.status in (CampaignStatus.CANCELLED,):
            raise TransitionError("The campaign was cancelled.")
        previous = message.state
        message.state = MessageState.QUEUED
        message.claim_token = None
        message.lease_until = None
        message.next_attempt_at = None
        message.finished_at = None
        message.save()
        if campaign.status == CampaignStatus.SENT:
            campaign.status = CampaignStatus.SENDING
            campaign.finished_at = None
            campaign.save(update_fields=["status", "finished_at", "updated_at"])
        audit.record(
            "message.resend",
            actor=actor,
            request=request,
            target=campaign,
            details={"message_id": message.pk, "from": previous},
        )
        if campaign.status == CampaignStatus.SENDING:
            campaign_id = campaign.pk
            transaction.on_commit(lambda: _enqueue_chains(campaign_id))
    return message


MAX_SEED_ADDRESSES = 10
TEST_SUBJECT_PREFIX = "[Test] "


def seed_addresses() -> list[str]:
    """The organization's seed list (Settings), the test send's default recipients."""
    text = org.get_settings().seed_addresses.replace(",", "\n").replace(";", "\n")
    return [line.strip() for line in text.splitlines() if line.strip()][:MAX_SEED_ADDRESSES]


def seed_addresses_text() -> str:
    return ", ".join(seed_addresses())


def campaign_test_send(
    *,
    campaign: Campaign,
    addresses: list[str],
    actor: Actor,
    request: HttpRequest | None = None,
) -> int:
    """Send the campaign's current template to seed addresses, rendered with sample data.

    Never uses a real contact's data (a seed address is not a consenting recipient), so
    PHI-bearing templates show sample PHI. Goes through the send path (prepare, render,
    MIME, DKIM, pooled relay connection) with the preheader, the subject prefixed
    "[Test]" and tracking off; it creates no ``Message`` row, so reports never count it.
    Without ``addresses`` the organization's seed list is used. Synchronous; returns how
    many the relay accepted. Raises :class:`CampaignError` (bad addresses, no template or
    sender, relay refused). Audits ``campaign.test_send`` (count only; addresses are not recorded).
    """

    cleaned = sorted({a.strip().lower() for a in addresses if a.strip()})
    if not cleaned:
        cleaned = sorted({a.lower() for a in seed_addresses()})
    if not cleaned:
        raise CampaignError("Give at least one seed address, or set the seed list in Settings.")
    if len(cleaned) > MAX_SEED_ADDRESSES:
        raise CampaignError(f"At most {MAX_SEED_ADDRESSES} seed addresses per test send.")
    for address in cleaned:
        try:
            validate_email(address)
        except ValidationError:
            raise CampaignError(
                "One of the seed addresses is not a valid e-mail address."
            ) from None
    template = campaign.template
    if template is None or campaign.sender is None:
        raise CampaignError("Choose a template and a sender identity first.")
    sources = _with_footer(subject=template.subject, html=template.html, text=template.text)
    preview = Campaign(
        pk=campaign.pk,
        sender=campaign.sender,
        frozen_subject=TEST_SUBJECT_PREFIX + sources["subject"],
        frozen_html=with_preheader(sources["html"], campaign.preheader),
        frozen_text=sources["text"],
        frozen_phi_bearing=template.phi_bearing,
        secure_policy=campaign.secure_policy,
        track_opens=False,
        track_clicks=False,
        marketing_id=campaign.marketing_id,
        started_at=timezone.now(),
    )
    try:
        prepared = delivery.prepare(preview, cache=False)
    except delivery.SendRefused as error:
        raise CampaignError(str(error)) from None
    config = RelayConfig.from_settings()
    accepted = 0
    try:
        connection = pool().acquire(config)
    except TransportError as error:
        raise CampaignError(f"The relay could not be used: {error}") from None
    try:
        for address in cleaned:
            context = {**SAMPLE_CONTEXT, "contact": {**SAMPLE_CONTEXT["contact"], "email": address}}
            try:
                built = delivery.build_one(
                    prepared,
                    message_id=0,
                    email=address,
                    context=context,
                    contact_id=None,
                    relay_security=config.security,
                )
            except templating.TemplateError as error:
                raise CampaignError(f"The template cannot be rendered: {error}") from None
            outcome = connection.send(built.mail_from, address, built.data)
            if outcome.accepted:
                accepted += 1
            if connection.broken:
                break
    finally:
        pool().release(connection)
    audit.record(
        "campaign.test_send",
        actor=actor,
        request=request,
        target=campaign,
        details={"addresses": len(cleaned), "accepted": accepted},
    )
    return accepted


def campaigns_start_due() -> int:
    """Start every scheduled campaign whose time has come (Celery beat). Returns how many."""
    started = 0
    due = Campaign.objects.filter(
        status=CampaignStatus.SCHEDULED, scheduled_at__lte=timezone.now()
    ).values_list("pk", flat=True)
    for campaign_id in list(due):
        campaign = Campaign.objects.get(pk=campaign_id)
        try:
            campaign_start(campaign=campaign, actor=None)
        except TransitionError:
            continue  # another beat run started it
        except CampaignError as error:
            with transaction.atomic():
                Campaign.objects.filter(pk=campaign_id).update(status=CampaignStatus.DRAFT)
                audit.record(
                    "campaign.start_failed",
                    target=campaign,
                    details={"reason": str(error)[:200]},
                )
            continue
        started += 1
    return started


def campaigns_recover() -> dict[str, int]:
    """Lease recovery (Celery beat, every ``LUXMAIL_SEND_RECOVERY_SECONDS``): ``sending``
    rows with expired leases → ``unknown``; a sending campaign with due work gets a chain
    for each slot whose chain died (lease expired); finished campaigns are closed."""
    unknown = queue.recover_expired()
    # Rows a dead worker had claimed for a campaign cancelled since: cancel them too.
    now = timezone.now()
    Message.objects.filter(
        campaign__status=CampaignStatus.CANCELLED, state__in=queue.CLAIMABLE
    ).filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now)).update(
        state=MessageState.CANCELLED, claim_token=None, lease_until=None, finished_at=now
    )
    restarted = 0
    for campaign_id in Campaign.objects.filter(status=CampaignStatus.SENDING).values_list(
        "pk", flat=True
    ):
        if campaign_finish_if_done(campaign_id=campaign_id):
            continue
        due = queue.next_due(campaign_id=campaign_id)
        missing = send_parallelism() - queue.chains_live(campaign_id=campaign_id)
        if due is not None and due <= timezone.now() and missing > 0:
            _enqueue_chains(campaign_id, missing)
            restarted += missing
    return {"unknown": unknown, "restarted": restarted}
