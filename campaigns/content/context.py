"""The plain-dict template context of a recipient (campaigns/content/templating.py names).

Only the fields a template actually uses are decrypted (its analysis lists them), so
a campaign that greets by first name decrypts the address and the first name and
nothing else. Decryption needs an :class:`~luxmail.crypto.Access` obtained by the
caller with ``crypto.phi_access`` (one audit event per batch or preview).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from contacts.models import Contact, ContactProfile
from luxmail import crypto

# contact.* names that come straight from an encrypted Contact column.
_CONTACT_ENCRYPTED = {"email": "email", "first_name": "first_name", "last_name": "last_name"}
# phi.* names read from ContactProfile (encrypted) and how.
_PROFILE_DIRECT = {
    "birth_date": "birth_date",
    "sex": "sex",
    "language": "language",
    "zip_code": "zip_code",
    "conditions": "conditions",
    "medications": "medications",
    "insurance_type": "insurance_type",
    "insurance_plan": "insurance_plan",
    "primary_provider": "primary_provider",
    "last_visit": "last_visit",
    "next_appointment": "next_appointment",
    "journey_stage": "journey_stage",
    "custom": "custom_phi",
}


@dataclass
class Recipient:
    contact_id: int
    email: str
    context: dict[str, Any]


def _age(born: dt.date | None, today: dt.date) -> int | None:
    if born is None:
        return None
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def _plain(value: Any) -> Any:
    # Dates render as ISO text; the sandbox sees no Python objects with methods.
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def contact_fields_needed(fields: Iterable[tuple[str, str]]) -> tuple[set[str], set[str]]:
    contact_names = {name for base, name in fields if base == "contact"}
    phi_names = {name for base, name in fields if base == "phi"}
    return contact_names, phi_names


def recipients(
    contact_ids: list[int], *, fields: Iterable[tuple[str, str]], access: crypto.Access
) -> dict[int, Recipient]:
    """Decrypt what the template needs for each contact (missing ids are left out)."""
    contact_names, phi_names = contact_fields_needed(fields)
    wanted = {"email"} | {n for n in contact_names if n in _CONTACT_ENCRYPTED}
    if "full_name" in contact_names:
        wanted |= {"first_name", "last_name"}
    if "phone" in phi_names:
        wanted.add("phone")
    encrypted_names = sorted(wanted)
    # Values, not model instances: making a Contact costs more than decrypting it.
    rows = list(
        Contact.objects.filter(id__any_of=contact_ids).values_list(
            "id", "uuid", "domain", "external_id", "time_zone", *encrypted_names
        )
    )
    revealed_contacts = crypto.revealed_rows(
        Contact, encrypted_names, ((row[1], row[5:]) for row in rows), access=access
    )
    profile_names = {n for n in phi_names if n in _PROFILE_DIRECT}
    if phi_names & {"age", "birth_year"}:
        profile_names.add("birth_date")
    need_profile = bool(profile_names) or "custom" in contact_names
    profiles: dict[int, ContactProfile] = {}
    if need_profile:
        encrypted = sorted({_PROFILE_DIRECT[n] for n in profile_names})
        profile_columns = ["contact_id", "uuid", "custom", *encrypted]
        profiles = {
            p.contact_id: p
            for p in ContactProfile.objects.filter(contact_id__any_of=contact_ids).only(
                *profile_columns
            )
        }
    today = dt.date.today()
    result: dict[int, Recipient] = {}
    for (contact_id, _, domain, external_id, time_zone, *_), values in zip(
        rows, revealed_contacts, strict=True
    ):
        contact_ctx: dict[str, Any] = {
            "email": values["email"],
            "domain": domain,
            "external_id": external_id or "",
            "time_zone": time_zone,
        }
        for name in ("first_name", "last_name"):
            if name in values:
                contact_ctx[name] = values[name] or ""
        if "full_name" in contact_names:
            contact_ctx["full_name"] = " ".join(
                part for part in (values.get("first_name"), values.get("last_name")) if part
            )
        profile = profiles.get(contact_id)
        if "custom" in contact_names:
            contact_ctx["custom"] = dict(profile.custom) if profile else {}
        phi_ctx: dict[str, Any] = {}
        if phi_names:
            revealed = {
                name: crypto.reveal(profile, _PROFILE_DIRECT[name], access=access)
                if profile is not None
                else None
                for name in profile_names
            }
            for name in phi_names:
                if name == "age":
                    phi_ctx[name] = _age(revealed.get("birth_date"), today)
                elif name == "birth_year":
                    born = revealed.get("birth_date")
                    phi_ctx[name] = born.year if born else None
                elif name == "phone":
                    phi_ctx[name] = values.get("phone") or ""
                elif name == "custom":
                    phi_ctx[name] = revealed.get("custom") or {}
                else:
                    phi_ctx[name] = _plain(revealed.get(name))
                if phi_ctx[name] is None:
                    phi_ctx[name] = ""
        result[contact_id] = Recipient(
            contact_id=contact_id,
            email=values["email"],
            context={"contact": contact_ctx, "phi": phi_ctx},
        )
    return result


SAMPLE_CONTEXT: dict[str, Any] = {
    "contact": {
        "email": "pat.example@example.org",
        "first_name": "Pat",
        "last_name": "Example",
        "full_name": "Pat Example",
        "domain": "example.org",
        "external_id": "EXT-0001",
        "time_zone": "America/New_York",
        "custom": {},
    },
    "phi": {
        "birth_date": "1970-01-01",
        "birth_year": 1970,
        "age": 56,
        "sex": "unknown",
        "language": "en",
        "zip_code": "00000",
        "phone": "+1 555 0100",
        "conditions": ["Z00.00"],
        "medications": [],
        "insurance_type": "commercial",
        "insurance_plan": "Sample Plan",
        "primary_provider": "Dr. Sample",
        "last_visit": "2026-01-15",
        "next_appointment": "2026-12-01",
        "journey_stage": "active",
        "custom": {},
    },
}
