"""Consent capture (issue 18): authorization versions, sign-up submissions and their double
opt-in, the consent ledger, recipient preferences and staff revocation.

Guarantees:

* a submission is stored encrypted (``SignupSubmission.phi_payload``) and becomes a contact
  (or updates the one with the same address, found by its blind index) only when the
  patient confirms — a POST, never a GET;
* every grant, confirmation, revocation, unsubscribe and resubscribe leaves a
  :class:`ConsentLedgerEntry` whose evidence (IP, user agent, typed signature, staff note)
  is encrypted, and a ``consent.*`` audit event (ids only);
* nothing here logs or raises with a submitted value: errors name fields, not values;
* abuse limits (per IP, per address, confirmation mails per address) answer the same
  way whether or not an address is known.

The confirmation mail itself is sent by ``campaigns/transactional/confirmations.py``;
callers pass ``notify`` (called on commit with the submission id) so this layer never
imports the sending one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from contacts import upsert
from contacts.models import (
    AuthorizationVersion,
    ConsentLedgerEntry,
    Contact,
    ContactList,
    ContactPreference,
    ContactStatus,
    LedgerKind,
    SignupForm,
    SignupSubmission,
    SubmissionStatus,
    Suppression,
)
from contacts.services.consent import consent_grant, consent_revoke
from contacts.services.contacts import contact_upsert
from contacts.services.errors import ContactsError
from contacts.services.lists import list_members_add
from luxmail import audit, conf, crypto
from luxmail.actors import Actor
from luxmail.api.throttling import window_hit

SIGNUP_ACTOR = "signup-form"
MAX_SIGNATURE = 200
PAUSE_DAYS = (30, 90)


class SignupError(ContactsError):
    """A problem the patient or staff can fix; the message is safe to show."""


class SignupInvalid(SignupError):
    def __init__(self, errors: Mapping[str, str]):
        super().__init__("Please correct the fields marked below.")
        self.errors = dict(errors)


class SignupLimited(SignupError):
    pass


class SignupExpired(SignupError):
    pass


def _label(actor: Actor) -> str:
    if actor is None:
        return "system"
    if isinstance(actor, str):
        return actor[:100]
    return str(getattr(actor, "username", "") or getattr(actor, "label", "") or "staff")[:100]


# --- ledger -----------------------------------------------------------------------------------


def ledger_record(
    *,
    contact: Contact,
    kind: str,
    actor: Actor,
    purpose: str = "",
    source: str = "",
    evidence: Mapping[str, Any] | None = None,
    consent: Any = None,
    authorization: AuthorizationVersion | None = None,
    form: SignupForm | None = None,
) -> Any:
    """Append one ledger entry (evidence encrypted). Not audited separately: callers'
    own events (``consent.grant``…) cover it."""
    entry = ConsentLedgerEntry(
        contact=contact,
        kind=kind,
        purpose=purpose,
        consent=consent,
        authorization=authorization,
        form=form,
        actor=_label(actor),
        source=source[:32],
        occurred_at=timezone.now(),
    )
    crypto.seal(entry, "phi_evidence", dict(evidence or {}))
    entry.save()
    return entry


# --- submissions ------------------------------------------------------------------------------


def _limit(scope: str, ident: str, rate: str) -> None:
    if window_hit(f"signup-{scope}", ident, rate) is not None:
        raise SignupLimited("Too many sign-up attempts. Please wait a while and try again.")


def submission_create(
    *,
    form: SignupForm,
    data: Mapping[str, str],
    marketing: bool,
    phi_marketing: bool,
    authorization_accepted: bool,
    signature: str,
    list_ids: list[int],
    ip: str,
    user_agent: str,
    notify: Callable[[int], None],
) -> SignupSubmission | None:
    """Store a pending sign-up and have ``notify(submission_id)`` send its confirmation.

    Returns None when nothing was stored although the patient sees success (over the
    daily confirmation-mail limit for the address): the answer never tells whether an
    address is known. Raises :class:`SignupInvalid` (field → message, no values),
    :class:`SignupLimited` (per-IP or per-address rate) or :class:`SignupError`.
    """
    if not form.published:
        raise SignupError("This form is not available.")
    _limit("ip", ip or "unknown", conf.signup_rate_ip())
    allowed = {"email", *form.fields}
    fields = {key: value for key, value in data.items() if key in allowed and value != ""}
    errors: dict[str, str] = {}
    for key in ("email", *form.required_fields):
        if not str(data.get(key, "")).strip():
            errors[key] = "This field is required."
    normalized, row_errors = upsert.normalize_row(
        {k: v for k, v in fields.items() if k not in errors},
        row=1,
        defs=upsert.definitions(),
        require_email=False,
        blank_clears=False,
    )
    for error in row_errors:
        errors.setdefault(error.field.removeprefix("custom."), error.message)
    if not marketing and not phi_marketing:
        errors["marketing"] = "Tick at least one box to sign up."
    signature = " ".join(signature.split())
    if phi_marketing:
        if not form.request_phi_marketing or form.authorization is None:
            raise SignupError("This form does not collect an authorization.")
        if not authorization_accepted:
            errors["authorization"] = "Tick the box to confirm you read the authorization."
        if not signature:
            errors["signature"] = "Type your full name as your signature."
        elif len(signature) > MAX_SIGNATURE:
            errors["signature"] = f"At most {MAX_SIGNATURE} characters."
    allowed_lists = set(form.lists.values_list("pk", flat=True))
    if set(list_ids) - allowed_lists:
        errors["lists"] = "Choose from the lists shown."
    if errors:
        raise SignupInvalid(errors)
    address = str(fields["email"])
    bidx = upsert.email_bidx(address)
    _limit("address", bidx.hex(), conf.signup_rate_address())
    since = timezone.now() - dt.timedelta(days=1)
    sent = SignupSubmission.objects.filter(email_bidx=bidx, created_at__gte=since).count()
    if sent >= conf.signup_confirmations_per_day():
        return None
    del normalized  # validated only; the contact is written from ``fields`` on confirm
    payload = {
        "data": fields,
        "marketing": marketing,
        "phi_marketing": phi_marketing,
        "signature": signature if phi_marketing else "",
        "lists": sorted(set(list_ids)),
        "ip": ip,
        "user_agent": user_agent[:300],
        "submitted_at": timezone.now().isoformat(),
    }
    with transaction.atomic():
        submission = SignupSubmission(
            form=form,
            email_bidx=bidx,
            expires_at=timezone.now() + dt.timedelta(hours=conf.signup_confirm_hours()),
        )
        crypto.seal(submission, "phi_payload", payload)
        submission.save()
        audit.record(
            "signup.submit", actor=SIGNUP_ACTOR, target=form, details={"submission": submission.pk}
        )
        submission_id = submission.pk
        transaction.on_commit(lambda: notify(submission_id))
    return submission


def resubscribe_request(
    *, contact: Contact, ip: str, user_agent: str, notify: Callable[[int], None]
) -> SignupSubmission | None:
    """A recipient who unsubscribed asks to come back: a confirmation goes to the
    contact's address; nothing changes until it is confirmed. Limited like sign-ups."""
    _limit("ip", ip or "unknown", conf.signup_rate_ip())
    since = timezone.now() - dt.timedelta(days=1)
    sent = SignupSubmission.objects.filter(email_bidx=contact.email_bidx, created_at__gte=since)
    if sent.count() >= conf.signup_confirmations_per_day():
        return None
    with transaction.atomic():
        submission = SignupSubmission(
            kind="resubscribe",
            contact=contact,
            email_bidx=contact.email_bidx,
            expires_at=timezone.now() + dt.timedelta(hours=conf.signup_confirm_hours()),
        )
        crypto.seal(
            submission, "phi_payload", {"ip": ip, "user_agent": user_agent[:300], "marketing": True}
        )
        submission.save()
        audit.record("signup.resubscribe_request", actor="recipient", target=contact)
        submission_id = submission.pk
        transaction.on_commit(lambda: notify(submission_id))
    return submission


def _lift_unsubscribe(contact: Contact, *, now: dt.datetime) -> None:
    # A confirmed opt-in lifts the recipient's own unsubscribe, never a bounce,
    # complaint or staff suppression.
    Suppression.objects.filter(
        email_bidx=contact.email_bidx, removed_at__isnull=True, reason="unsubscribe"
    ).update(removed_at=now, removal_note="confirmed opt-in")
    if contact.status == ContactStatus.UNSUBSCRIBED:
        contact.status = ContactStatus.ACTIVE
        contact.status_changed_at = now
        contact.save(update_fields=["status", "status_changed_at", "updated_at"])


def submission_confirm(*, submission_id: int, ip: str, user_agent: str) -> SignupSubmission:
    """Confirm a pending submission (idempotent): upsert the contact, grant the
    consents with their evidence, add the chosen lists, write the ledger and clear the
    stored payload. Raises :class:`SignupExpired` for an expired or purged one."""
    now = timezone.now()
    with transaction.atomic():
        submission = (
            SignupSubmission.objects.select_for_update(of=("self",))
            .select_related("form", "form__authorization", "contact")
            .filter(pk=submission_id)
            .first()
        )
        if submission is None:
            raise SignupExpired("This link has expired. Please sign up again.")
        if submission.status == SubmissionStatus.CONFIRMED:
            return submission
        if submission.expires_at <= now:
            raise SignupExpired("This link has expired. Please sign up again.")
        access = crypto.phi_access(
            actor=SIGNUP_ACTOR, purpose="signup.confirm", details={"submission": submission.pk}
        )
        payload = crypto.reveal(submission, "phi_payload", access=access) or {}
        evidence = {
            "submitted_ip": payload.get("ip", ""),
            "submitted_user_agent": payload.get("user_agent", ""),
            "submitted_at": payload.get("submitted_at", ""),
            "confirmed_ip": ip,
            "confirmed_user_agent": user_agent[:300],
        }
        form = submission.form
        if submission.kind == "resubscribe" and submission.contact is not None:
            contact = submission.contact
            _lift_unsubscribe(contact, now=now)
            consent = consent_grant(
                contact=contact,
                purpose="marketing",
                source="web_form",
                actor=SIGNUP_ACTOR,
                evidence_ref=f"resubscribe:{submission.uuid}",
            )
            ledger_record(
                contact=contact,
                kind=LedgerKind.RESUBSCRIBE,
                purpose="marketing",
                actor="recipient",
                source="preference_center",
                evidence=evidence,
                consent=consent,
            )
        else:
            assert form is not None
            contact, _created = contact_upsert(
                data=payload.get("data", {}), actor=SIGNUP_ACTOR, source="web_form"
            )
            _lift_unsubscribe(contact, now=now)
            ledger_record(
                contact=contact,
                kind=LedgerKind.CONFIRMATION,
                actor="recipient",
                source="signup_form",
                evidence=evidence,
                form=form,
            )
            if payload.get("marketing"):
                consent = consent_grant(
                    contact=contact,
                    purpose="marketing",
                    source="web_form",
                    actor=SIGNUP_ACTOR,
                    evidence_ref=f"signup:{submission.uuid}",
                )
                ledger_record(
                    contact=contact,
                    kind=LedgerKind.GRANT,
                    purpose="marketing",
                    actor="recipient",
                    source="signup_form",
                    evidence=evidence,
                    consent=consent,
                    form=form,
                )
            auth = form.authorization
            if payload.get("phi_marketing") and auth is not None:
                days = auth.expires_after_days
                consent = consent_grant(
                    contact=contact,
                    purpose="phi_marketing",
                    source="web_form",
                    actor=SIGNUP_ACTOR,
                    evidence_ref=f"authorization:{auth.uuid}:v{auth.number}",
                    expires_at=now + dt.timedelta(days=days) if days else None,
                )
                ledger_record(
                    contact=contact,
                    kind=LedgerKind.GRANT,
                    purpose="phi_marketing",
                    actor="recipient",
                    source="signup_form",
                    evidence={**evidence, "signature": payload.get("signature", "")},
                    consent=consent,
                    authorization=auth,
                    form=form,
                )
                if auth.used_at is None:
                    AuthorizationVersion.objects.filter(pk=auth.pk).update(used_at=now)
            for contact_list in ContactList.objects.filter(pk__in=payload.get("lists", [])):
                list_members_add(
                    contact_list=contact_list, contact_ids=[contact.pk], actor=SIGNUP_ACTOR
                )
        submission.status = SubmissionStatus.CONFIRMED
        submission.confirmed_at = now
        submission.contact = contact
        submission.phi_payload = None  # the contact and the ledger hold it from now on
        submission.save(update_fields=["status", "confirmed_at", "contact", "phi_payload"])
        audit.record(
            "signup.confirm",
            actor="recipient",
            target=contact,
            details={"submission": submission.pk, "kind": submission.kind},
        )
    return submission


def purge_expired(*, batch: int = 1000, now: dt.datetime | None = None) -> int:
    """Delete expired unconfirmed submissions, ``batch`` rows at a time; returns how
    many. Audits ``signup.purge`` when something was deleted."""
    now = now or timezone.now()
    total = 0
    while True:
        ids = list(
            SignupSubmission.objects.filter(
                status=SubmissionStatus.PENDING, expires_at__lte=now
            ).values_list("pk", flat=True)[:batch]
        )
        if not ids:
            break
        deleted, _ = SignupSubmission.objects.filter(pk__in=ids).delete()
        total += deleted
    if total:
        audit.record("signup.purge", actor="signup-purge", details={"deleted": total})
    return total


# --- revocation and preferences ---------------------------------------------------------------


def authorization_revoke(
    *,
    contact: Contact,
    actor: Actor,
    source: str,
    note: str = "",
    evidence: Mapping[str, Any] | None = None,
    request: HttpRequest | None = None,
) -> int:
    """Revoke the contact's PHI-marketing authorization at once (queued messages are
    skipped at claim time). Staff must give a note. Returns how many grants ended."""
    if source == "staff" and not note.strip():
        raise SignupError("Give a note: why is the authorization revoked?")
    with transaction.atomic():
        count = consent_revoke(
            contact=contact, purpose="phi_marketing", actor=actor, source=source, request=request
        )
        ledger_record(
            contact=contact,
            kind=LedgerKind.REVOCATION,
            purpose="phi_marketing",
            actor=actor,
            source=source,
            evidence={**(evidence or {}), "note": note.strip()[:500]},
        )
    return count


def preferences_of(contact: Contact) -> ContactPreference:
    return ContactPreference.objects.filter(contact=contact).first() or ContactPreference(
        contact=contact
    )


def preferences_save(
    *,
    contact: Contact,
    frequency: str,
    channel: str,
    language: str,
    pause_days: int | None,
    actor: Actor,
) -> ContactPreference:
    """Store the recipient's choices; ``pause_days`` (30 or 90) pauses marketing from
    now, 0 resumes. Writes a ``preferences`` ledger entry. Raises :class:`SignupError`."""
    pref = preferences_of(contact)
    if frequency not in dict(pref._meta.get_field("frequency").choices or []):
        raise SignupError("Choose a frequency from the list.")
    if channel not in dict(pref._meta.get_field("channel").choices or []):
        raise SignupError("Choose a channel from the list.")
    if pause_days not in (None, 0, *PAUSE_DAYS):
        raise SignupError("A pause lasts 30 or 90 days.")
    pref.frequency, pref.channel, pref.language = frequency, channel, language[:8]
    if pause_days:
        pref.paused_until = timezone.now() + dt.timedelta(days=pause_days)
    elif pause_days == 0:
        pref.paused_until = None
    with transaction.atomic():
        pref.save()
        ledger_record(
            contact=contact,
            kind=LedgerKind.PREFERENCES,
            actor=actor,
            source="preference_center",
            evidence={
                "frequency": frequency,
                "channel": channel,
                "language": pref.language,
                "paused_until": pref.paused_until.isoformat() if pref.paused_until else "",
            },
        )
    return pref
