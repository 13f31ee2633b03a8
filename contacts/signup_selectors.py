"""Reads of consent capture (issue 18): what a sign-up form asks, the consent ledger.

The ledger's evidence is encrypted; :func:`consent_ledger` decrypts it only for a
caller that may see PHI, through an audited ``crypto.phi_access``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.http import HttpRequest

from contacts.attributes import PROFILE_ATTRIBUTES
from contacts.models import (
    ConsentLedgerEntry,
    Contact,
    ContactList,
    CustomField,
    SignupForm,
    SignupSettings,
)
from luxmail import crypto
from luxmail.actors import Actor

IDENTITY_LABELS = {
    "email": "Email address",
    "first_name": "First name",
    "last_name": "Last name",
    "phone": "Phone",
}
_INPUT_TYPES = {"date": "date", "zip": "text", "language": "text"}
_AUTOCOMPLETE = {
    "email": "email",
    "first_name": "given-name",
    "last_name": "family-name",
    "phone": "tel",
    "birth_date": "bday",
    "zip_code": "postal-code",
}


@dataclass
class FieldSpec:
    key: str
    label: str
    input_type: str = "text"
    choices: list[tuple[str, str]] = field(default_factory=list)
    required: bool = False
    help_text: str = ""
    autocomplete: str = ""
    phi: bool = False
    value: str = ""
    error: str = ""

    @property
    def html_id(self) -> str:
        return "f-" + self.key.replace(".", "-").replace("_", "-")


def field_options() -> list[tuple[str, str]]:
    """Every attribute a form may ask: (key, label) — identity, PHI profile, custom."""
    options = [(k, v) for k, v in IDENTITY_LABELS.items() if k != "email"]
    options += [(a.name, a.label) for a in PROFILE_ATTRIBUTES.values()]
    options += [(f"custom.{c.key}", c.label) for c in CustomField.objects.order_by("key")]
    return options


def form_fields(form: SignupForm) -> list[FieldSpec]:
    """The inputs of ``form`` in order, email first (always required)."""
    required = set(form.required_fields)
    specs = [FieldSpec("email", "Email address", "email", required=True, autocomplete="email")]
    custom = {f"custom.{c.key}": c for c in CustomField.objects.all()}
    for key in form.fields:
        if key == "email":
            continue
        if key in IDENTITY_LABELS:
            spec = FieldSpec(key, IDENTITY_LABELS[key], "tel" if key == "phone" else "text")
            spec.phi = True
        elif key in PROFILE_ATTRIBUTES:
            attribute = PROFILE_ATTRIBUTES[key]
            spec = FieldSpec(key, attribute.label, _INPUT_TYPES.get(attribute.kind, "text"))
            spec.phi = True
            if attribute.kind == "choice":
                spec.input_type = "select"
                spec.choices = [(c, c.replace("_", " ").capitalize()) for c in attribute.choices]
            if attribute.kind in {"codes", "list"}:
                spec.help_text = "Separate several with commas."
        elif key in custom:
            definition = custom[key]
            spec = FieldSpec(key, definition.label, help_text=definition.help_text)
            spec.phi = definition.phi
            if definition.kind == "date":
                spec.input_type = "date"
            elif definition.kind == "choice":
                spec.input_type = "select"
                spec.choices = [(str(c), str(c)) for c in definition.choices]
        else:
            continue  # a field deleted since the form was built
        spec.required = key in required
        spec.autocomplete = _AUTOCOMPLETE.get(key, "")
        specs.append(spec)
    return specs


def form_lists(form: SignupForm) -> list[ContactList]:
    return list(form.lists.order_by("name"))


def published_form(slug: str) -> SignupForm | None:
    return (
        SignupForm.objects.select_related("authorization")
        .filter(slug=slug[:60], published=True)
        .first()
    )


def signup_settings() -> SignupSettings:
    return SignupSettings.objects.order_by("pk").first() or SignupSettings()


def frame_ancestors() -> list[str]:
    """Origins allowed to embed forms (validated ``https://host[:port]`` lines only)."""
    allowed = []
    for line in signup_settings().frame_ancestors.splitlines():
        origin = line.strip().rstrip("/")
        host = origin.removeprefix("https://")
        if origin.startswith("https://") and host and all(c.isalnum() or c in ".-:" for c in host):
            allowed.append(origin)
    return allowed


@dataclass
class LedgerRow:
    id: int
    kind: str
    kind_label: str
    purpose: str
    occurred_at: Any
    actor: str
    source: str
    form: str
    authorization: str
    evidence: dict[str, Any]


def consent_ledger(
    *, contact: Contact, actor: Actor, request: HttpRequest | None = None, reveal: bool
) -> list[LedgerRow]:
    """The contact's ledger, newest first. With ``reveal`` the evidence is decrypted
    (one audited ``phi.access``); without, it is left out."""
    entries = list(
        ConsentLedgerEntry.objects.filter(contact_id=contact.pk)
        .select_related("form", "authorization")
        .order_by("-occurred_at", "-id")[:500]
    )
    access = None
    if reveal and entries:
        access = crypto.phi_access(
            actor=actor, purpose="consent.ledger", target=contact, request=request
        )
    return [
        LedgerRow(
            id=e.pk,
            kind=e.kind,
            kind_label=e.get_kind_display(),
            purpose=e.purpose,
            occurred_at=e.occurred_at,
            actor=e.actor,
            source=e.source,
            form=e.form.name if e.form else "",
            authorization=str(e.authorization) if e.authorization else "",
            evidence=(crypto.reveal(e, "phi_evidence", access=access) or {}) if access else {},
        )
        for e in entries
    ]
