"""Staff-side writes of consent capture (issue 18): authorization versions with the
45 CFR 164.508(c) checklist, sign-up forms (publishing, brand colour contrast) and the
organization's sign-up settings. Every write is audited; user-caused problems raise
:class:`~contacts.services.signup.SignupError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.utils import timezone

from contacts.models import CORE_ELEMENTS, AuthorizationVersion, SignupForm
from contacts.services.signup import SignupError
from luxmail import audit
from luxmail.actors import Actor

# --- authorizations ---------------------------------------------------------------------------


def authorization_save(
    *,
    name: str,
    text: str,
    checklist: Mapping[str, bool],
    actor: Actor,
    version: AuthorizationVersion | None = None,
    expires_after_days: int | None = None,
) -> AuthorizationVersion:
    """Create a draft version (the next number of ``name``) or edit a draft in place.

    Raises :class:`SignupError` for a published or used version (immutable: save a
    new version instead). Audits ``authorization.save``.
    """
    if version is not None and (version.published_at or version.used_at):
        raise SignupError("A published authorization cannot change; create a new version.")
    unknown = set(checklist) - set(CORE_ELEMENTS)
    if unknown:
        raise SignupError("Unknown checklist element.")
    if not text.strip() or not name.strip():
        raise SignupError("An authorization needs a name and its text.")
    with transaction.atomic():
        if version is None:
            last = AuthorizationVersion.objects.filter(name=name).order_by("-number").first()
            version = AuthorizationVersion(name=name, number=(last.number + 1) if last else 1)
            version.created_by = actor if getattr(actor, "pk", None) else None  # type: ignore[assignment]
        version.text = text
        version.checklist = {key: bool(checklist.get(key)) for key in CORE_ELEMENTS}
        version.expires_after_days = expires_after_days
        version.save()
        audit.record(
            "authorization.save", actor=actor, target=version, details={"number": version.number}
        )
    return version


def authorization_missing_elements(version: AuthorizationVersion) -> list[str]:
    return [label for key, label in CORE_ELEMENTS.items() if not version.checklist.get(key)]


def authorization_publish(*, version: AuthorizationVersion, actor: Actor) -> AuthorizationVersion:
    """Publish a version once every 164.508(c) core element is addressed. Idempotent.

    Raises :class:`SignupError` naming the missing elements. Audits ``authorization.publish``.
    """
    missing = authorization_missing_elements(version)
    if missing:
        raise SignupError("Address every core element first: " + "; ".join(missing) + ".")
    if version.published_at is None:
        version.published_at = timezone.now()
        version.save(update_fields=["published_at"])
        audit.record("authorization.publish", actor=actor, target=version)
    return version


def form_publish(*, form: SignupForm, actor: Actor) -> SignupForm:
    """Publish a form; one asking for PHI marketing needs a published authorization,
    which becomes immutable (``used_at``). Audits ``signup_form.publish``."""
    if form.request_phi_marketing:
        auth = form.authorization
        if auth is None or auth.published_at is None:
            raise SignupError("A form asking for PHI marketing needs a published authorization.")
    with transaction.atomic():
        if form.authorization is not None and form.authorization.used_at is None:
            AuthorizationVersion.objects.filter(pk=form.authorization.pk).update(
                used_at=timezone.now()
            )
        form.published = True
        form.save(update_fields=["published"])
        audit.record("signup_form.publish", actor=actor, target=form)
    return form


# --- forms and settings (staff) ---------------------------------------------------------------


def contrast_ratio(color: str) -> float:
    """WCAG 2.1 contrast of white text on ``#rrggbb``."""

    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    luminance = 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)
    return 1.05 / (luminance + 0.05)


def form_save(*, form: SignupForm, actor: Actor) -> SignupForm:
    """Save a form built by staff. The brand colour must keep white text at WCAG AA
    contrast (4.5:1); a published form asking for PHI marketing keeps a published
    authorization. Audits ``signup_form.save``. Raises :class:`SignupError`."""
    color = form.brand_color
    if not (
        len(color) == 7
        and color[0] == "#"
        and all(c in "0123456789abcdefABCDEF" for c in color[1:])
    ):
        raise SignupError("The brand colour is a hex colour such as #0b5394.")
    if contrast_ratio(color) < 4.5:
        raise SignupError("The brand colour is too light for white text (WCAG AA needs 4.5:1).")
    if form.request_phi_marketing and (
        form.authorization is None or form.authorization.published_at is None
    ):
        form.published = False
    with transaction.atomic():
        if form.created_by_id is None and getattr(actor, "pk", None):
            form.created_by = actor  # type: ignore[assignment]
        form.save()
        if form.published and form.authorization is not None and form.authorization.used_at is None:
            AuthorizationVersion.objects.filter(pk=form.authorization.pk).update(
                used_at=timezone.now()
            )
        audit.record("signup_form.save", actor=actor, target=form)
    return form


def form_unpublish(*, form: SignupForm, actor: Actor) -> SignupForm:
    form.published = False
    form.save(update_fields=["published"])
    audit.record("signup_form.unpublish", actor=actor, target=form)
    return form


def settings_save(*, settings_row: Any, actor: Actor) -> Any:
    """Save the organization's sign-up settings (one row). Audits ``signup_settings.save``."""
    with transaction.atomic():
        settings_row.save()
        audit.record("signup_settings.save", actor=actor)
    return settings_row
