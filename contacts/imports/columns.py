"""What an import column can become, the guessed mapping, and one row's translation.

Values are validated and normalized by ``contacts.upsert.normalize_row`` (through
``contacts_bulk_upsert``), the one place that decides what a valid value is. This
module only routes cells to field names and reads the consent columns, which are
instructions ("grant", "revoke") rather than contact attributes.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from contacts.attributes import PROFILE_ATTRIBUTES, ContactValueError, normalize_choice, parse_date
from contacts.imports.files import cell_text
from contacts.keys.services import KeyMaterialError, key_validate
from contacts.models import ConsentPurpose, ConsentSource, CustomField
from contacts.upsert import RowError

IGNORE = ""
CONSENT_PREFIX = "consent."
CONSENT_SOURCE = "consent.source"
CONSENT_EVIDENCE = "consent.evidence"
# Encryption columns (issue 5): the contact's OpenPGP key / S/MIME certificate.
KEY_PREFIX = "key."
_KEY_COLUMNS = (
    ("pgp", "OpenPGP public key", ("pgp_public_key", "pgp public key", "pgp key", "openpgp key")),
    ("smime", "S/MIME certificate", ("smime_certificate", "s mime certificate", "smime cert")),
)


@dataclass(frozen=True)
class ImportField:
    """One target of the column mapping."""

    key: str
    label: str
    group: str
    phi: bool = False
    required: bool = False
    aliases: tuple[str, ...] = ()
    help: str = ""


_IDENTITY_ALIASES: dict[str, tuple[str, ...]] = {
    "email": ("e-mail", "email address", "e-mail address", "mail", "email addr"),
    "first_name": ("first", "firstname", "given name", "forename"),
    "last_name": ("last", "lastname", "surname", "family name"),
    "phone": ("phone number", "mobile", "cell", "telephone", "tel", "mobile phone"),
    "external_id": ("external id", "crm id", "ehr id", "externalid"),
    "time_zone": ("timezone", "tz", "time zone"),
}
_PROFILE_ALIASES: dict[str, tuple[str, ...]] = {
    "birth_date": ("dob", "date of birth", "birthdate", "birthday", "birth date"),
    "sex": ("gender", "sex at birth"),
    "language": ("preferred language", "lang"),
    "zip_code": ("zip", "zipcode", "postal code", "postcode", "zip code"),
    "conditions": ("condition", "diagnoses", "diagnosis", "icd10", "icd 10", "icd-10 codes"),
    "medications": ("medication", "meds", "drugs"),
    "insurance_type": ("insurance", "payer type", "coverage type"),
    "insurance_plan": ("plan", "payer", "health plan"),
    "primary_provider": ("provider", "pcp", "primary care provider", "physician"),
    "last_visit": ("last visit date", "last seen", "last appointment"),
    "next_appointment": ("next appointment date", "next visit", "upcoming appointment"),
    "journey_stage": ("stage", "care journey", "journey", "care journey stage"),
}
_CONSENT_ALIASES: dict[str, tuple[str, ...]] = {
    ConsentPurpose.MARKETING: ("marketing consent", "marketing opt in", "opt in", "optin"),
    ConsentPurpose.PHI_MARKETING: (
        "phi marketing consent",
        "hipaa authorization",
        "hipaa marketing authorization",
        "phi consent",
    ),
    ConsentPurpose.TRANSACTIONAL: ("transactional consent",),
}
_IDENTITY_LABELS = {
    "email": "Email",
    "first_name": "First name",
    "last_name": "Last name",
    "phone": "Phone",
    "external_id": "External id (EHR/CRM, never an MRN)",
    "time_zone": "Time zone",
}
_CONSENT_HELP = (
    "yes / no / the date consent was given (YYYY-MM-DD). 'no' revokes a present consent; "
    "blank leaves it as it is."
)


def catalog(custom_fields: Sequence[CustomField] | None = None) -> list[ImportField]:
    """Every field a column can be mapped to, in display order."""
    fields = [
        ImportField(
            key,
            label,
            "Contact",
            required=key == "email",
            aliases=_IDENTITY_ALIASES.get(key, ()),
        )
        for key, label in _IDENTITY_LABELS.items()
    ]
    fields += [
        ImportField(
            name,
            attribute.label,
            "Health profile (PHI)",
            phi=True,
            aliases=_PROFILE_ALIASES.get(name, ()),
        )
        for name, attribute in PROFILE_ATTRIBUTES.items()
    ]
    customs = list(CustomField.objects.all()) if custom_fields is None else list(custom_fields)
    fields += [
        ImportField(
            f"custom.{custom.key}",
            custom.label + (" (PHI)" if custom.phi else ""),
            "Custom fields",
            phi=custom.phi,
            aliases=(custom.key, custom.key.replace("_", " ")),
            help=custom.help_text,
        )
        for custom in customs
    ]
    fields += [
        ImportField(
            CONSENT_PREFIX + purpose,
            f"Consent: {label}",
            "Consent",
            aliases=(purpose, purpose.replace("_", " "), *_CONSENT_ALIASES.get(purpose, ())),
            help=_CONSENT_HELP,
        )
        for purpose, label in ConsentPurpose.choices
    ]
    fields += [
        ImportField(
            CONSENT_SOURCE,
            "Consent source (per row)",
            "Consent",
            aliases=("consent source", "source"),
            help="One of: " + ", ".join(ConsentSource.values),
        ),
        ImportField(
            CONSENT_EVIDENCE,
            "Consent evidence reference (per row)",
            "Consent",
            aliases=("consent evidence", "evidence", "evidence ref", "evidence reference"),
            help="Form or document id (no PHI), at most 200 characters.",
        ),
    ]
    fields += [
        ImportField(
            KEY_PREFIX + kind,
            label + " (PHI)",
            "Encryption",
            phi=True,
            aliases=aliases,
            help="ASCII-armored key or PEM certificate for the row's address; replaces the "
            "contact's current one. Blank leaves it as it is.",
        )
        for kind, label, aliases in _KEY_COLUMNS
    ]
    return fields


def _simplify(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())


def guess_mapping(headers: Sequence[str], fields: Sequence[ImportField]) -> dict[str, str]:
    """Header → field key (``""`` = ignore) by name, label or a common synonym."""
    candidates: dict[str, str] = {}
    for f in fields:
        for name in (f.key, f.key.replace(".", " "), f.label, *f.aliases):
            candidates.setdefault(_simplify(name), f.key)
    mapping: dict[str, str] = {}
    taken: set[str] = set()
    for header in headers:
        key = candidates.get(_simplify(header), IGNORE)
        if key and key not in taken:
            taken.add(key)
            mapping[header] = key
        else:
            mapping[header] = IGNORE
    return mapping


# --- one row ------------------------------------------------------------------------------

_YES = {"yes", "y", "true", "1", "x", "granted", "opt in", "opted in", "optin", "consented"}
_NO = {"no", "n", "false", "0", "revoked", "opt out", "opted out", "optout", "withdrawn"}


@dataclass
class ConsentPlan:
    """What a row says about consent: grants (purpose → grant time) and revocations."""

    grants: dict[str, dt.datetime | None] = field(default_factory=dict)
    revokes: set[str] = field(default_factory=set)
    source: str = ""
    evidence: str = ""

    def __bool__(self) -> bool:
        return bool(self.grants or self.revokes)


@dataclass
class PreparedRow:
    number: int
    data: dict[str, Any]
    consent: ConsentPlan
    errors: list[RowError]
    keys: list[Any] = field(default_factory=list)  # contacts.keys.services.ValidatedKey


def _consent_value(purpose: str, value: Any) -> tuple[str, dt.datetime | None]:
    label = dict(ConsentPurpose.choices)[purpose].split(" (")[0]
    if isinstance(value, dt.date):
        day = value
    else:
        text = " ".join(str(value).strip().lower().replace("-", " ").split())
        if text in _YES:
            return "grant", None
        if text in _NO:
            return "revoke", None
        try:
            day = parse_date(purpose, str(value).strip())
        except ContactValueError:
            raise ContactValueError(
                CONSENT_PREFIX + purpose,
                f"{label} consent: use yes, no or the date it was given (YYYY-MM-DD).",
            ) from None
    if day > timezone.localdate():
        raise ContactValueError(
            CONSENT_PREFIX + purpose, f"{label} consent: the date lies in the future."
        )
    granted = timezone.make_aware(dt.datetime.combine(day, dt.time.min))
    return "grant", granted


def row_preparer(
    headers: Sequence[str], mapping: Mapping[str, str]
) -> Callable[[int, Sequence[Any]], PreparedRow | None]:
    """:func:`prepare_row` for the rows of one file, its routing worked out once.

    ``headers`` are the job's (the mapping's keys, in the file's column order); rows
    come as value tuples in that order. Files without consent or key columns (which
    need per-row parsing) take a fast path that only routes the cells.
    """
    keys = [mapping.get(header, IGNORE) for header in headers]
    if any(key.startswith((CONSENT_PREFIX, KEY_PREFIX)) for key in keys):
        return lambda number, values: prepare_row(
            number, dict(zip(headers, values, strict=True)), mapping
        )
    routed = [(position, key) for position, key in enumerate(keys) if key]

    def prepare(number: int, values: Sequence[Any]) -> PreparedRow | None:
        texts = [v.strip() if type(v) is str else cell_text(v) for v in values]
        if all(text == "" for text in texts):
            return None
        data: dict[str, Any] = {}
        for position, key in routed:
            value = texts[position]
            data[key] = value.isoformat() if isinstance(value, dt.date) else value
        return PreparedRow(number=number, data=data, consent=ConsentPlan(), errors=[])

    return prepare


def prepare_row(
    number: int, cells: Mapping[str, Any], mapping: Mapping[str, str]
) -> PreparedRow | None:
    """Route one row's cells to field names; None for a blank row.

    Consent columns are parsed here (they are instructions, not attributes); every
    other value goes to ``contacts_bulk_upsert`` as text to be validated there.
    """
    if all(cell_text(v) == "" for v in cells.values()):
        return None
    values = {header: cell_text(cells.get(header)) for header in mapping}
    data: dict[str, Any] = {}
    consent = ConsentPlan()
    errors: list[RowError] = []
    keys: list[Any] = []
    for header, key in mapping.items():
        if not key:
            continue
        value = values[header]
        if key == CONSENT_SOURCE:
            if value != "":
                try:
                    by_label = {label.lower(): v for v, label in ConsentSource.choices}
                    consent.source = normalize_choice(
                        "consent source",
                        by_label.get(str(value).strip().lower(), value),
                        ConsentSource.values,
                    )
                except ContactValueError:
                    errors.append(
                        RowError(
                            number,
                            key,
                            "Consent source: must be one of " + ", ".join(ConsentSource.values),
                        )
                    )
        elif key == CONSENT_EVIDENCE:
            text = " ".join(str(value).split())
            if len(text) > 200:
                errors.append(
                    RowError(number, key, "Consent evidence reference: at most 200 characters.")
                )
            consent.evidence = text
        elif key.startswith(KEY_PREFIX):
            if str(value).strip() == "":
                continue

            try:
                keys.append(
                    key_validate(
                        kind=key.removeprefix(KEY_PREFIX),
                        data=str(value),
                        email=str(values_email(values, mapping)),
                    )
                )
            except KeyMaterialError as error:
                errors.append(RowError(number, key, error.message))
        elif key.startswith(CONSENT_PREFIX):
            if value == "":
                continue
            purpose = key.removeprefix(CONSENT_PREFIX)
            try:
                action, granted = _consent_value(purpose, value)
            except ContactValueError as error:
                errors.append(RowError(number, error.field, error.message))
                continue
            if action == "grant":
                consent.grants[purpose] = granted
            else:
                consent.revokes.add(purpose)
        else:
            data[key] = value.isoformat() if isinstance(value, dt.date) else value
    return PreparedRow(number=number, data=data, consent=consent, errors=errors, keys=keys)


def values_email(values: Mapping[str, Any], mapping: Mapping[str, str]) -> str:
    """The row's e-mail cell (keys are matched against it)."""
    for header, key in mapping.items():
        if key == "email":
            return str(values.get(header) or "")
    return ""
