"""Double opt-in mails of sign-up forms and preference-center resubscribes (issue 18).

The submission is not a contact yet (it becomes one only when confirmed), so the mail
cannot be a ``Message`` row; it goes out like LuxMail's other notices
(``campaigns/sending/notices.py``): a sender identity's From, DKIM-signed when it has a
key, through the relay or straight to the MX by the organization's delivery mode.
The Celery task takes the submission id only; the address is decrypted here, audited
(``phi.access`` purpose ``signup.confirmation_mail``), and never logged.

The link carries a signed opaque token of the submission id (``campaigns/sending/tokens``);
it expires with the submission (``LUXMAIL_SIGNUP_CONFIRM_HOURS``).
"""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.template.loader import render_to_string

from campaigns.models import SenderIdentity
from campaigns.sending import notices, tokens
from contacts.models import SignupSubmission, SubmissionStatus
from contacts.services import signup
from luxmail import crypto, org

CONFIRM = tokens.SIGNUP_CONFIRM
PREFERENCES = tokens.CONTACT_PREFERENCES


def confirm_token(submission_id: int) -> str:
    return tokens.make(CONFIRM, submission_id)


def confirm_url(submission_id: int) -> str:
    return f"{settings.LUXMAIL_BASE_URL}/f/confirm/{confirm_token(submission_id)}/"


def read_confirm_token(token: str) -> int:
    """The submission id; raises ``tokens.InvalidToken``."""
    return tokens.read(CONFIRM, token)


def preferences_path(contact_id: int) -> str:
    """A preference-center link naming the contact (not a message), for sign-up pages."""
    return f"/u/{tokens.make(PREFERENCES, contact_id)}/preferences/"


def _sender() -> SenderIdentity | None:
    # The organization's first sender that can sign; a notice without DKIM otherwise.
    return (
        SenderIdentity.objects.exclude(dkim_domain="").order_by("pk").first()
        or SenderIdentity.objects.order_by("pk").first()
    )


def _address(submission: SignupSubmission) -> str:
    access = crypto.phi_access(
        actor=None,
        purpose="signup.confirmation_mail",
        details={"submission": submission.pk},
    )
    if submission.contact is not None:
        return str(crypto.reveal(submission.contact, "email", access=access))
    payload = crypto.reveal(submission, "phi_payload", access=access) or {}
    return str(payload.get("data", {}).get("email", ""))


def send_confirmation(*, submission_id: int) -> bool:
    """Mail the confirmation link of a pending submission; True when accepted.

    Idempotent in effect: a confirmed, expired or purged submission sends nothing.
    """
    submission = (
        SignupSubmission.objects.select_related("form", "contact").filter(pk=submission_id).first()
    )
    if submission is None or submission.status != SubmissionStatus.PENDING:
        return False
    to = _address(submission)
    if not to:
        return False
    sender = _sender()
    org_name = org.get_settings().name
    context = {
        "org_name": org_name,
        "link": confirm_url(submission.pk),
        "resubscribe": submission.kind == "resubscribe",
        "hours": int((submission.expires_at - submission.created_at).total_seconds() // 3600),
    }
    return notices.notice_send(
        kind="signup",
        sender=sender,
        to=to,
        subject=f"Please confirm your sign-up with {org_name}",
        html=render_to_string("signup/email/confirm.html", context),
        text=render_to_string("signup/email/confirm.txt", context),
    )


@shared_task(name="signup.send_confirmation", ignore_result=True)
def send_confirmation_task(submission_id: int) -> None:
    send_confirmation(submission_id=submission_id)


def enqueue_confirmation(submission_id: int) -> None:
    """The ``notify`` callback of ``contacts.services.signup`` (runs on commit)."""
    send_confirmation_task.delay(submission_id)


@shared_task(name="campaigns.transactional.confirmations.purge_expired_signups", ignore_result=True)
def purge_expired_signups() -> None:
    signup.purge_expired()
