"""Writes of the campaigns app: templates, sender identities, campaigns, messages.

Every service owns its transaction, audits what it changes (ids and codes only) and
enqueues Celery work with ``transaction.on_commit``. See docs/architecture.md
"Sending pipeline" for the states and guarantees.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone

from campaigns.content import fields as template_fields
from campaigns.content import htmlmail, templating
from campaigns.models import (
    Campaign,
    CampaignStatus,
    DkimAlgorithm,
    EmailTemplate,
    Message,
    MessageState,
    OrgSigningKey,
    SenderIdentity,
    SigningKind,
)
from campaigns.selectors import audience_queryset, user_is_admin
from campaigns.senders import signing
from campaigns.sending import queue
from luxmail import audit, crypto
from luxmail.models import SecurePolicy


def _user(actor: Any) -> Any:
    """The actor as a user for ``created_by`` columns (API keys and the system: None)."""
    from django.contrib.auth import get_user_model

    return actor if isinstance(actor, get_user_model()) else None


class CampaignError(Exception):
    """A request the user can fix; ``str()`` is a friendly sentence (no PHI)."""


class TransitionError(CampaignError):
    """The campaign's status does not allow this action."""


# --- templates -------------------------------------------------------------------------


def _apply_template(template: EmailTemplate, *, subject: str, html: str, text: str) -> None:
    checked = templating.validate(subject=subject, html=html, text=text)
    template.subject = subject.strip()
    template.html = html
    template.text = text
    template.phi_bearing = checked.phi_bearing
    template.uses_unsubscribe = checked.uses_unsubscribe


def template_create(
    *,
    name: str,
    subject: str,
    html: str,
    text: str = "",
    actor: Any,
    request: HttpRequest | None = None,
) -> EmailTemplate:
    """Validate and store a template. Raises ``TemplateValidationError`` / ``CampaignError``.

    Marks it PHI-bearing when it uses any ``phi.*`` name. Audits ``template.create``.
    """
    name = " ".join(name.split())
    if not name:
        raise CampaignError("A template needs a name.")
    with transaction.atomic():
        if EmailTemplate.objects.filter(name=name).exists():
            raise CampaignError(f"A template named '{name}' already exists.")
        template = EmailTemplate(name=name, created_by=_user(actor), updated_by=_user(actor))
        _apply_template(template, subject=subject, html=html, text=text)
        template.save()
        audit.record(
            "template.create",
            actor=actor,
            request=request,
            target=template,
            details={"phi_bearing": template.phi_bearing},
        )
    return template


def template_update(
    *,
    template: EmailTemplate,
    actor: Any,
    name: str | None = None,
    subject: str | None = None,
    html: str | None = None,
    text: str | None = None,
    request: HttpRequest | None = None,
) -> EmailTemplate:
    """Validate and save changes (a new version). Campaigns already sending keep their
    frozen copy. Audits ``template.update``."""
    with transaction.atomic():
        template = EmailTemplate.objects.select_for_update().get(pk=template.pk)
        if name is not None:
            name = " ".join(name.split())
            if not name:
                raise CampaignError("A template needs a name.")
            if EmailTemplate.objects.filter(name=name).exclude(pk=template.pk).exists():
                raise CampaignError(f"A template named '{name}' already exists.")
            template.name = name
        _apply_template(
            template,
            subject=template.subject if subject is None else subject,
            html=template.html if html is None else html,
            text=template.text if text is None else text,
        )
        template.version += 1
        template.updated_by = _user(actor)
        template.save()
        audit.record(
            "template.update",
            actor=actor,
            request=request,
            target=template,
            details={"version": template.version, "phi_bearing": template.phi_bearing},
        )
    return template


def template_preview(
    *,
    subject: str,
    html: str,
    text: str,
    actor: Any,
    contact_id: int | None = None,
    request: HttpRequest | None = None,
    missing_fields: bool = False,
) -> templating.Rendered:
    """Render a template against sample data, or a real contact (audited PHI read).

    ``missing_fields`` empties every contact/PHI field the template reads first (the
    preview "as a contact with missing fields"). When the recipient lacks a field the
    template prints unguarded, :class:`CampaignError` names the fields: the send
    pipeline would skip that contact (``campaigns/content/fields.py``).

    A real contact's data needs ``luxmail.view_phi`` when the template is PHI-bearing
    or reads any contact field; previews of sample data need nothing. Raises
    ``TemplateError`` for template problems and :class:`CampaignError` when refused.
    """
    from campaigns.content.context import SAMPLE_CONTEXT, recipients

    checked = templating.validate(subject=subject, html=html, text=text)
    if contact_id is None:
        context = dict(SAMPLE_CONTEXT)
    else:
        if not actor.has_perm("luxmail.view_phi"):
            raise CampaignError(
                "Previewing with a real contact shows their data; only PHI-permitted roles "
                "may do that. Preview with sample data instead."
            )
        access = crypto.phi_access(
            actor=actor,
            purpose="template.preview",
            request=request,
            details={"contact_id": contact_id, "phi_bearing": checked.phi_bearing},
        )
        found = recipients([contact_id], fields=checked.fields, access=access)
        if contact_id not in found:
            raise CampaignError("That contact does not exist.")
        context = found[contact_id].context
    if missing_fields:
        context = template_fields.blank_context(
            context, template_fields.referenced_fields(subject=subject, html=html, text=text)
        )
    blank = template_fields.missing(
        context, template_fields.required_fields(subject=subject, html=html, text=text)
    )
    if blank:
        raise CampaignError(
            "This contact would be skipped and sent nothing: "
            + template_fields.skip_reason(blank).partition("not sent, ")[2]
            + ". Give those fields a default(…) or an {% if %} to send them anyway."
        )
    org_row = _org()
    sources = _with_footer(subject=subject, html=html, text=text)
    compiled = templating.CompiledTemplate(**sources)
    base = f"{settings.LUXMAIL_BASE_URL}/u/preview/"
    rendered = compiled.render(
        {
            **context,
            "org": {"name": org_row.name, "postal_address": org_row.postal_address},
            "unsubscribe_url": base,
            "preferences_url": base + "preferences/",
        }
    )
    rendered.html = htmlmail.prepare_html(rendered.html)
    return rendered


def _org() -> Any:
    from luxmail import org

    return org.get_settings()


_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)
_HTML_FOOTER = (
    '\n<p style="font-size:12px;color:#666666;margin-top:24px">'
    '<a href="{{ unsubscribe_url }}">Unsubscribe</a> · '
    '<a href="{{ preferences_url }}">Email preferences</a></p>\n'
)
_ADDRESS_FOOTER = (
    '\n<p style="font-size:12px;color:#666666">{{ org.name }} · {{ org.postal_address }}</p>\n'
)


def _with_footer(*, subject: str, html: str, text: str) -> dict[str, str]:
    """The sources as sent: unsubscribe link and postal address appended when missing
    (CAN-SPAM), and a text part generated from the HTML when there is none."""
    names = templating.validate(subject=subject, html=html, text=text)
    addition = ""
    if not names.uses_unsubscribe:
        addition += _HTML_FOOTER
    if "org.postal_address" not in html.replace(" ", ""):
        addition += _ADDRESS_FOOTER
    if addition:
        ends = list(_BODY_END.finditer(html))
        if ends:
            at = ends[-1].start()
            html = html[:at] + addition + html[at:]
        else:
            html += addition
    if not text.strip():
        text = htmlmail.html_to_text(html)
    else:
        if "unsubscribe_url" not in text:
            text += "\n\nUnsubscribe: {{ unsubscribe_url }}\nPreferences: {{ preferences_url }}\n"
        if "org.postal_address" not in text.replace(" ", ""):
            text += "\n{{ org.name }}, {{ org.postal_address }}\n"
    return {"subject": subject.strip(), "html": html, "text": text}


# --- sender identities ---------------------------------------------------------------------


def sender_create(
    *,
    name: str,
    from_name: str,
    from_email: str,
    actor: Any,
    reply_to: str = "",
    postal_address: str = "",
    dkim_domain: str = "",
    dkim_selector: str = "",
    dkim_algorithm: str = DkimAlgorithm.RSA,
    generate_dkim: bool = True,
    bounce_domain: str = "",
    request: HttpRequest | None = None,
) -> SenderIdentity:
    """Create a sender identity, by default with a new DKIM key for the From domain.

    Audits ``sender.create``. Raises :class:`CampaignError` for bad input.
    """
    from django.core.exceptions import ValidationError
    from django.core.validators import validate_email

    for label, value in (("From address", from_email), ("Reply-To", reply_to)):
        if value:
            try:
                validate_email(value)
            except ValidationError:
                raise CampaignError(f"{label} is not a valid e-mail address.") from None
    name = " ".join(name.split())
    if not name or not from_name.strip():
        raise CampaignError("A sender identity needs a name and a From name.")
    with transaction.atomic():
        if SenderIdentity.objects.filter(name=name).exists():
            raise CampaignError(f"A sender identity named '{name}' already exists.")
        sender = SenderIdentity.objects.create(
            name=name,
            from_name=from_name.strip(),
            from_email=from_email.strip(),
            reply_to=reply_to.strip(),
            postal_address=postal_address.strip(),
            bounce_domain=bounce_domain.strip().lower(),
            created_by=_user(actor),
        )
        audit.record("sender.create", actor=actor, request=request, target=sender)
        if generate_dkim:
            sender = sender_generate_dkim(
                sender=sender,
                actor=actor,
                domain=dkim_domain or from_email.rpartition("@")[2],
                selector=dkim_selector or f"lm{timezone.now():%Y%m}",
                algorithm=dkim_algorithm,
                request=request,
            )
    return sender


_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def sender_generate_dkim(
    *,
    sender: SenderIdentity,
    actor: Any,
    domain: str,
    selector: str,
    algorithm: str = DkimAlgorithm.RSA,
    request: HttpRequest | None = None,
) -> SenderIdentity:
    """Generate (or replace) the identity's DKIM key; the private key is stored encrypted.

    The DNS TXT record to publish is :func:`campaigns.selectors.dkim_dns_record`.
    Audits ``sender.dkim_generate`` (domain, selector, algorithm; never key material).
    """
    domain = domain.strip().lower().rstrip(".")
    selector = selector.strip().lower()
    if not _LABEL.match(selector):
        raise CampaignError("The DKIM selector must be a DNS label (letters, digits, hyphens).")
    if not domain or not all(_LABEL.match(part) for part in domain.split(".")):
        raise CampaignError("The DKIM domain is not a valid domain name.")
    if algorithm not in DkimAlgorithm.values:
        raise CampaignError("Choose RSA-2048 or Ed25519 for the DKIM key.")
    key = signing.generate_key(algorithm)
    with transaction.atomic():
        sender = SenderIdentity.objects.select_for_update().get(pk=sender.pk)
        sender.dkim_domain = domain
        sender.dkim_selector = selector
        sender.dkim_algorithm = algorithm
        crypto.seal(sender, "dkim_private_key", key.private_pem)
        sender.dkim_public_key = key.public_b64
        sender.dkim_created_at = timezone.now()
        sender.save()
        audit.record(
            "sender.dkim_generate",
            actor=actor,
            request=request,
            target=sender,
            details={"domain": domain, "selector": selector, "algorithm": algorithm},
        )
    return sender


def sender_update(
    *,
    sender: SenderIdentity,
    actor: Any,
    request: HttpRequest | None = None,
    **changes: Any,
) -> SenderIdentity:
    """Change display fields (names, addresses, postal address). Audits ``sender.update``."""
    allowed = {"name", "from_name", "from_email", "reply_to", "postal_address", "bounce_domain"}
    unknown = set(changes) - allowed
    if unknown:
        raise CampaignError("These fields cannot be changed here: " + ", ".join(sorted(unknown)))
    with transaction.atomic():
        sender = SenderIdentity.objects.select_for_update().get(pk=sender.pk)
        changed = []
        for field_name, value in changes.items():
            if value is not None and getattr(sender, field_name) != value:
                setattr(sender, field_name, value)
                changed.append(field_name)
        if changed:
            sender.full_clean(exclude=["dkim_private_key"])
            sender.save()
            audit.record(
                "sender.update",
                actor=actor,
                request=request,
                target=sender,
                details={"changed": sorted(changed)},
            )
    return sender


def sender_allow_without_dkim(
    *, sender: SenderIdentity, allow: bool, actor: Any, request: HttpRequest | None = None
) -> SenderIdentity:
    """Admins only: allow (or stop allowing) sends from an identity without DKIM.

    Raises :class:`CampaignError` for non-Admins. Audits ``sender.allow_without_dkim``.
    """
    if not user_is_admin(actor):
        raise CampaignError("Only an Admin may allow sending without DKIM.")
    with transaction.atomic():
        sender = SenderIdentity.objects.select_for_update().get(pk=sender.pk)
        if sender.allow_without_dkim != allow:
            sender.allow_without_dkim = allow
            sender.save(update_fields=["allow_without_dkim", "updated_at"])
            audit.record(
                "sender.allow_without_dkim",
                actor=actor,
                request=request,
                target=sender,
                details={"allow": allow},
            )
    return sender


# --- campaigns -----------------------------------------------------------------------------


_AUDIENCE_FIELDS = ("segments", "lists", "exclude_segments", "exclude_lists")
_EDITABLE = (
    "name",
    "marketing_id",
    "report_field",
    "template",
    "sender",
    "scheduled_at",
    "throttle_per_minute",
    "track_opens",
    "track_clicks",
    "secure_policy",
    "encrypted_subject_visible",
)


def campaign_create(
    *, name: str, actor: Any, request: HttpRequest | None = None, **fields: Any
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
    *, campaign: Campaign, actor: Any, request: HttpRequest | None = None, **fields: Any
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
    return campaign


def _check_sendable(campaign: Campaign) -> EmailTemplate:
    template = campaign.template
    if template is None:
        raise CampaignError("Choose a template before sending.")
    if campaign.sender is None:
        raise CampaignError("Choose a sender identity before sending.")
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
    from luxmail import org

    local = timezone.localtime(at).strftime("%Y-%m-%d %H:%M")
    now = timezone.localtime().strftime("%Y-%m-%d %H:%M")
    return (
        f"The send time {local} {org.time_zone()} is in the past (it is now {now}). Choose a "
        "later time, or leave it empty to send now."
    )


def campaign_schedule(
    *,
    campaign: Campaign,
    actor: Any,
    at: datetime | None = None,
    request: HttpRequest | None = None,
) -> Campaign:
    """draft → scheduled (``at`` in the future) or straight to sending (``at`` None).

    A time in the past is refused (:class:`CampaignError`), never taken as "now".
    Audits ``campaign.schedule``; starting audits ``campaign.start``.
    """
    if at is not None and at <= timezone.now():
        raise CampaignError(past_time_message(at))
    with transaction.atomic():
        campaign = (
            Campaign.objects.select_for_update(of=("self",))
            .select_related("template", "sender")
            .get(pk=campaign.pk)
        )
        if campaign.status not in (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED):
            raise TransitionError("Only a draft or scheduled campaign can be scheduled.")
        _check_sendable(campaign)
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


def _insert_messages(campaign: Campaign, *, phi: bool) -> int:
    queryset = audience_queryset(campaign=campaign, phi=phi)
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
                "ON CONFLICT (campaign_id, contact_id) DO NOTHING"
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


def campaign_start(*, campaign: Campaign, actor: Any, request: HttpRequest | None = None) -> int:
    """Freeze the template, snapshot the eligible recipients and start sending.

    Inserts one ``Message`` per eligible recipient (audience minus suppressed and no consent:
    ``phi_marketing`` for PHI-bearing templates, ``marketing`` otherwise) in one SQL
    statement, sets ``sending`` and enqueues the send chains on commit. Returns the
    number of recipients. Audits ``campaign.start``. Raises :class:`CampaignError`.
    """
    with transaction.atomic():
        campaign = (
            Campaign.objects.select_for_update(of=("self",))
            .select_related("template", "sender")
            .get(pk=campaign.pk)
        )
        if campaign.status not in (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED):
            raise TransitionError("This campaign has already started.")
        template = _check_sendable(campaign)
        sources = _with_footer(subject=template.subject, html=template.html, text=template.text)
        campaign.frozen_subject = sources["subject"]
        campaign.frozen_html = sources["html"]
        campaign.frozen_text = sources["text"]
        campaign.frozen_phi_bearing = template.phi_bearing
        count = _insert_messages(campaign, phi=template.phi_bearing)
        now = timezone.now()
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
    from campaigns import tasks

    for _ in range(send_parallelism() if count is None else count):
        tasks.send_batch.delay(campaign_id)


def send_parallelism() -> int:
    """The configured concurrency of a campaign: its number of chain slots."""
    return max(int(getattr(settings, "LUXMAIL_SEND_CHAINS", 2)), 1)


def campaign_is_sending(*, campaign_id: int) -> bool:
    return Campaign.objects.filter(pk=campaign_id, status=CampaignStatus.SENDING).exists()


def _transition(
    *,
    campaign: Campaign,
    actor: Any,
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
    *, campaign: Campaign, actor: Any, request: HttpRequest | None = None
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
    *, campaign: Campaign, actor: Any, request: HttpRequest | None = None
) -> Campaign:
    """paused → sending, and the send chains start again. Audits ``campaign.resumed``."""
    campaign = _transition(
        campaign=campaign,
        actor=actor,
        allowed_from=(CampaignStatus.PAUSED,),
        to=CampaignStatus.SENDING,
        action="resumed",
        request=request,
    )
    campaign_id = campaign.pk
    transaction.on_commit(lambda: _enqueue_chains(campaign_id))
    return campaign


def campaign_cancel(
    *, campaign: Campaign, actor: Any, request: HttpRequest | None = None
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
        from campaigns.selectors import campaign_counts

        audit.record(
            "campaign.sent", actor=None, target=campaign, details=campaign_counts(campaign)
        )
    return True


def message_resend(*, message: Message, actor: Any, request: HttpRequest | None = None) -> Message:
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


def campaign_test_send(
    *,
    campaign: Campaign,
    addresses: list[str],
    actor: Any,
    request: HttpRequest | None = None,
) -> int:
    """Send the campaign's current template to seed addresses, rendered with sample data.

    Never uses a real contact's data (a seed address is not a consenting recipient), so
    PHI-bearing templates show sample PHI. Synchronous; returns how many the relay
    accepted. Raises :class:`CampaignError` (bad addresses, no template or sender, relay
    refused). Audits ``campaign.test_send`` (count only; addresses are not recorded).
    """
    from django.core.exceptions import ValidationError
    from django.core.validators import validate_email

    from campaigns.content.context import SAMPLE_CONTEXT
    from campaigns.sending import delivery
    from campaigns.sending.transport import RelayConfig, TransportError, pool

    cleaned = sorted({a.strip().lower() for a in addresses if a.strip()})
    if not cleaned:
        raise CampaignError("Give at least one seed address.")
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
        frozen_subject=sources["subject"],
        frozen_html=sources["html"],
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


# --- the organization's signing keys ------------------------------------------------------

_SIGNING_UPLOAD_MAX = 64 * 1024


def org_signing_key_set(
    *,
    kind: str,
    private_key: str | bytes,
    certificate: str | bytes = "",
    passphrase: str = "",
    actor: Any,
    request: HttpRequest | None = None,
) -> OrgSigningKey:
    """Validate and store (or replace) the organization's signing key of ``kind``.

    From then on every message of that kind is signed, then encrypted. S/MIME:
    ``certificate`` is the signing certificate (PEM, chain allowed) and ``private_key``
    its PEM key, stored without the passphrase (encrypted with the key ring). OpenPGP:
    ``private_key`` is the ASCII-armored secret key, kept as uploaded with its passphrase
    (both encrypted). Raises :class:`campaigns.secure.errors.SigningKeyError` whose text
    tells the uploader what is wrong; nothing is stored then. Audits
    ``secure.signing_key_set`` (kind, fingerprint; never key material).
    """
    from cryptography.hazmat.primitives import hashes, serialization

    from campaigns.secure.errors import SigningKeyError
    from luxmail.securemail import pgp, smime

    if kind not in SigningKind.values:
        raise SigningKeyError("Choose an S/MIME certificate or an OpenPGP key.", code="kind")
    if not private_key:
        raise SigningKeyError("Upload the private key.", code="empty")
    if len(private_key) + len(certificate) > _SIGNING_UPLOAD_MAX:
        raise SigningKeyError("The upload is larger than 64 KB: not a signing key.", code="size")
    secret: bytes
    if kind == SigningKind.SMIME:
        if not certificate:
            raise SigningKeyError("Upload the signing certificate too.", code="empty")
        cert = smime.load_signing_certificate(certificate, private_key, passphrase=passphrase)
        secret = cert.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        public = "".join(
            item.public_bytes(serialization.Encoding.PEM).decode()
            for item in (cert.certificate, *cert.chain)
        )
        fingerprint = cert.certificate.fingerprint(hashes.SHA256()).hex().upper()
        identity = cert.certificate.subject.rfc4514_string()
        expires_at: datetime | None = cert.certificate.not_valid_after_utc
        passphrase = ""
    else:
        key = pgp.load_signing_key(private_key, passphrase=passphrase or None)
        secret = private_key.encode() if isinstance(private_key, str) else bytes(private_key)
        public, fingerprint, identity, expires_at = key.public_armored, key.fingerprint, "", None
    with transaction.atomic():
        row = OrgSigningKey.objects.select_for_update().filter(kind=kind).first()
        row = row or OrgSigningKey(kind=kind)
        crypto.seal(row, "private_key", secret)
        crypto.seal(row, "passphrase", passphrase or None)
        row.public, row.fingerprint, row.identity = public, fingerprint, identity
        row.expires_at, row.created_by, row.created_at = expires_at, actor, timezone.now()
        row.save()
        audit.record(
            "secure.signing_key_set",
            actor=actor,
            request=request,
            target=row,
            details={"kind": kind, "fingerprint": fingerprint},
        )
    return row


def org_signing_key_remove(*, kind: str, actor: Any, request: HttpRequest | None = None) -> bool:
    """Stop signing messages of ``kind``; returns whether a key was removed. Audited."""
    with transaction.atomic():
        row = OrgSigningKey.objects.select_for_update().filter(kind=kind).first()
        if row is None:
            return False
        audit.record(
            "secure.signing_key_remove",
            actor=actor,
            request=request,
            target=row,
            details={"kind": kind, "fingerprint": row.fingerprint},
        )
        row.delete()
    return True
