"""Normalization, validation and tokens of contact attributes.

One place decides what a valid value is (import, API, UI and segments all call it) and
which tokens a profile yields. Errors are :class:`ContactValueError`; their messages
name the attribute and the expected format, never the offending value, because the
value may be PHI and error messages end up in logs and import reports.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
import zoneinfo
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache, lru_cache
from typing import Any, Literal

from django.core.signals import setting_changed
from django.core.validators import EmailValidator
from django.dispatch import receiver

from contacts import tokens
from contacts.models import CustomFieldKind, InsuranceType, JourneyStage, Sex
from luxmail.crypto import normalize_text


class ContactValueError(ValueError):
    """A value a user supplied is not valid for ``field``. The message carries no PHI."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


AttributeKind = Literal["date", "choice", "text", "codes", "list", "zip", "language"]


@dataclass(frozen=True)
class Attribute:
    name: str
    label: str
    kind: AttributeKind
    token_field: str
    choices: tuple[str, ...] = ()


PROFILE_ATTRIBUTES: dict[str, Attribute] = {
    a.name: a
    for a in [
        Attribute("birth_date", "Date of birth", "date", "birth_date"),
        Attribute("sex", "Sex", "choice", "sex", tuple(Sex.values)),
        Attribute("language", "Preferred language", "language", "language"),
        Attribute("zip_code", "ZIP code", "zip", "zip"),
        Attribute("conditions", "Conditions (ICD-10)", "codes", "condition"),
        Attribute("medications", "Medications", "list", "medication"),
        Attribute(
            "insurance_type",
            "Insurance type",
            "choice",
            "insurance_type",
            tuple(InsuranceType.values),
        ),
        Attribute("insurance_plan", "Insurance plan", "text", "insurance_plan"),
        Attribute("primary_provider", "Primary provider", "text", "provider"),
        Attribute("last_visit", "Last visit", "date", "last_visit"),
        Attribute("next_appointment", "Next appointment", "date", "next_appointment"),
        Attribute(
            "journey_stage",
            "Care-journey stage",
            "choice",
            "journey_stage",
            tuple(JourneyStage.values),
        ),
    ]
}

_CHOICE_ALIASES: dict[str, dict[str, str]] = {
    "sex": {
        "f": "female",
        "woman": "female",
        "m": "male",
        "man": "male",
        "x": "other",
        "nonbinary": "other",
        "non-binary": "other",
        "u": "unknown",
    },
    "insurance_type": {
        "self-pay": "self_pay",
        "self pay": "self_pay",
        "selfpay": "self_pay",
        "uninsured": "self_pay",
        "private": "commercial",
    },
    "journey_stage": {"at-risk": "at_risk", "at risk": "at_risk"},
}

_LANGUAGE_NAMES = {
    "english": "en",
    "spanish": "es",
    "español": "es",
    "french": "fr",
    "german": "de",
    "chinese": "zh",
    "mandarin": "zh",
    "cantonese": "yue",
    "vietnamese": "vi",
    "korean": "ko",
    "tagalog": "tl",
    "arabic": "ar",
    "russian": "ru",
    "portuguese": "pt",
    "haitian creole": "ht",
    "italian": "it",
    "polish": "pl",
    "japanese": "ja",
    "hindi": "hi",
}
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})*$")
_ICD10 = re.compile(r"^[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?$")
_ZIP = re.compile(r"^(\d{5})(?:-?(\d{4}))?$")
_LIST_SPLIT = re.compile(r"[;|,\n]")
_EMAIL_VALIDATOR = EmailValidator()
MAX_TEXT = 200


# --- scalar parsers -------------------------------------------------------------------------


def parse_date(field: str, value: Any) -> dt.date:
    """A date from a ``date``, an ISO ``YYYY-MM-DD`` string or US ``MM/DD/YYYY``."""
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, dt.date):
        parsed = value
    elif isinstance(value, str):
        text = value.strip()
        try:
            if re.fullmatch(r"\d{4}-\d{1,2}-\d{1,2}", text):
                year, month, day = (int(p) for p in text.split("-"))
            elif re.fullmatch(r"\d{1,2}/\d{1,2}/\d{4}", text):
                month, day, year = (int(p) for p in text.split("/"))
            else:
                raise ValueError
            parsed = dt.date(year, month, day)
        except ValueError:
            raise ContactValueError(
                field, f"{_label(field)}: not a date (use YYYY-MM-DD or MM/DD/YYYY)."
            ) from None
    else:
        raise ContactValueError(field, f"{_label(field)}: not a date (use YYYY-MM-DD).")
    if not tokens.DATE_MIN <= parsed <= tokens.DATE_MAX:
        raise ContactValueError(
            field,
            f"{_label(field)}: dates must lie between {tokens.DATE_MIN.isoformat()} and "
            f"{tokens.DATE_MAX.isoformat()}.",
        )
    return parsed


def parse_decimal(field: str, value: Any) -> Decimal:
    if isinstance(value, bool):
        raise ContactValueError(field, f"{_label(field)}: not a number.")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ContactValueError(field, f"{_label(field)}: not a number.") from None
    if not number.is_finite() or abs(number) >= Decimal(10) ** 15:
        raise ContactValueError(field, f"{_label(field)}: number out of range.")
    return number


def canonical_number(number: Decimal) -> str:
    """``1.50`` and ``1.5`` and ``1.500`` share one token: ``1.5``; ``2.0`` is ``2``."""
    text = format(number.normalize(), "f")
    return "0" if text in {"-0", "0"} else text


def normalize_email(value: Any) -> tuple[str, str]:
    """``(normalized address, domain)``: trimmed, lowercased, IDNA domain; validated."""
    if not isinstance(value, str) or not value.strip():
        raise ContactValueError("email", "Email: an address is required.")
    # An import checks each address twice (the file-wide duplicate check, then the row):
    # the second time is a cache hit.
    found = _normalize_email_text(value)
    if isinstance(found, ContactValueError):
        raise ContactValueError(found.field, found.message)
    return found


@lru_cache(maxsize=8192)
def _normalize_email_text(value: str) -> tuple[str, str] | ContactValueError:
    try:
        return _normalize_email(value)
    except ContactValueError as error:
        return error


def _normalize_email(value: str) -> tuple[str, str]:
    text = value.strip().lower()
    local, sep, domain = text.rpartition("@")
    if not sep or not local or not domain:
        raise ContactValueError("email", "Email: not a valid address (missing @).")
    ascii_domain = _ascii_domain(domain)
    address = f"{local}@{ascii_domain}"
    # EmailValidator's checks, with the domain's (the costlier regex) once per domain: a
    # file's addresses share a few domains.
    if (
        len(address) > 320
        or not _EMAIL_VALIDATOR.user_regex.match(local)
        or not _email_domain_valid(ascii_domain)
    ):
        raise ContactValueError("email", "Email: not a valid address.")
    return address, ascii_domain


@lru_cache(maxsize=10_000)
def _email_domain_valid(domain: str) -> bool:
    return domain in _EMAIL_VALIDATOR.domain_allowlist or bool(
        _EMAIL_VALIDATOR.validate_domain_part(domain)
    )


@lru_cache(maxsize=10_000)
def _ascii_domain(domain: str) -> str:
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise ContactValueError("email", "Email: the domain is not a valid domain name.") from None


def normalize_phone(value: Any) -> str:
    text = str(value).strip()
    digits = re.sub(r"[\s().\-/]", "", text)
    if not re.fullmatch(r"\+?\d{7,15}", digits):
        raise ContactValueError(
            "phone", "Phone: use 7 to 15 digits, optionally starting with + (e.g. +16175550100)."
        )
    return digits


def normalize_name(field: str, value: Any) -> str:
    text = " ".join(str(value).split())
    if len(text) > 100:
        raise ContactValueError(field, f"{_label(field)}: at most 100 characters.")
    return text


def normalize_time_zone(value: Any) -> str:
    text = str(value).strip()
    if text and text not in _time_zones():
        raise ContactValueError(
            "time_zone", "Time zone: use an IANA name such as America/New_York."
        )
    return text


@cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def normalize_external_id(value: Any) -> str:
    text = str(value).strip()
    if len(text) > 100:
        raise ContactValueError("external_id", "External id: at most 100 characters.")
    return text


def normalize_icd10(field: str, value: Any) -> str:
    """``e119`` / ``E11.9`` / `` e11.9 `` → ``E11.9``; anything else is refused."""
    text = re.sub(r"\s", "", str(value)).upper()
    if "." not in text and len(text) > 3:
        text = f"{text[:3]}.{text[3:]}"
    if not _ICD10.fullmatch(text):
        raise ContactValueError(
            field, f"{_label(field)}: not an ICD-10 code (expected a form such as E11.9 or I10)."
        )
    return text


def icd10_prefixes(code: str) -> list[str]:
    """Every category level of a code: ``E11.649`` → E11, E11.6, E11.64, E11.649."""
    head, _, tail = code.partition(".")
    return [head] + [f"{head}.{tail[:i]}" for i in range(1, len(tail) + 1)]


def _split_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [item.strip() for item in _LIST_SPLIT.split(value) if item.strip()]
    if isinstance(value, Iterable):
        return [str(item).strip() for item in value if str(item).strip()]
    raise ContactValueError("list", "Expected a list of values.")


def _label(field: str) -> str:
    attribute = PROFILE_ATTRIBUTES.get(field)
    if attribute:
        return attribute.label
    return field.replace("_", " ").capitalize()


def _choice_key(text: str) -> str:
    return " ".join(text.lower().replace("_", " ").replace("-", " ").split())


def normalize_choice(field: str, value: Any, choices: Iterable[str]) -> str:
    """The canonical choice for ``value``: case, ``_``/``-``/space and aliases ignored."""
    choices = tuple(choices)
    text = " ".join(str(value).strip().lower().split())
    key = _choice_key(_CHOICE_ALIASES.get(field, {}).get(text, text))
    for choice in choices:
        if _choice_key(choice) == key:
            return choice
    raise ContactValueError(field, f"{_label(field)}: must be one of {', '.join(choices)}.")


def normalize_language(value: Any) -> str:
    text = " ".join(str(value).strip().lower().replace("_", "-").split())
    text = _LANGUAGE_NAMES.get(text, text)
    if not _LANGUAGE.fullmatch(text):
        raise ContactValueError(
            "language", "Preferred language: use a language code such as en, es or zh-hant."
        )
    return text


def language_prefixes(code: str) -> list[str]:
    """``zh-hant-tw`` → zh, zh-hant, zh-hant-tw (so ``language eq zh`` matches it)."""
    parts = code.split("-")
    return ["-".join(parts[: i + 1]) for i in range(len(parts))]


def normalize_zip(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = f"{value:05d}"
    text = str(value).strip()
    # Spreadsheets drop leading zeros of New England ZIP codes (02139 → 2139).
    if re.fullmatch(r"\d{3,4}", text):
        text = text.zfill(5)
    match = _ZIP.fullmatch(text)
    if not match:
        raise ContactValueError("zip_code", "ZIP code: use 5 digits or ZIP+4 (12345-6789).")
    return match.group(1) + (f"-{match.group(2)}" if match.group(2) else "")


def normalize_text_value(field: str, value: Any) -> str:
    text = " ".join(str(value).split())
    if len(text) > MAX_TEXT:
        raise ContactValueError(field, f"{_label(field)}: at most {MAX_TEXT} characters.")
    return text


# --- profile attributes ---------------------------------------------------------------------


def is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def normalize_attribute(name: str, value: Any) -> Any:
    """The stored form of a profile attribute (None for a blank value)."""
    if isinstance(value, str):
        # Imports repeat the same texts (dates, codes, plans) thousands of times.
        result = _normalize_text_attribute(name, value)
        normalized: Any = list(result) if isinstance(result, tuple) else result
    else:
        normalized = _normalize_attribute(name, value)
    # The organization's date is at most a day ahead of the server's (cheap to read).
    if name == "birth_date" and normalized is not None and normalized > _tomorrow():
        raise ContactValueError(name, "Date of birth: lies in the future.")
    return normalized


def _tomorrow() -> dt.date:
    return dt.date.today() + dt.timedelta(days=1)


# The value caches below are bounded so an import's memory is too, whatever the file
# (issue 16 §4: <= 256 MB): ~130 bytes an entry, so ~13 MB each when full, against
# ~26 MB at the 200,000 entries they had before.
@lru_cache(maxsize=100_000)
def _normalize_text_attribute(name: str, value: str) -> Any:
    result = _normalize_attribute(name, value)
    return tuple(result) if isinstance(result, list) else result


def _normalize_attribute(name: str, value: Any) -> Any:
    attribute = PROFILE_ATTRIBUTES[name]
    if is_blank(value) and attribute.kind not in {"codes", "list"}:
        return None
    if attribute.kind == "date":
        return parse_date(name, value)
    if attribute.kind == "choice":
        return normalize_choice(name, value, attribute.choices)
    if attribute.kind == "language":
        return normalize_language(value)
    if attribute.kind == "zip":
        return normalize_zip(value)
    if attribute.kind == "codes":
        codes = sorted({normalize_icd10(name, item) for item in _split_list(value)})
        return codes or None
    if attribute.kind == "list":
        items = {normalize_text_value(name, item) for item in _split_list(value)}
        return sorted(items, key=normalize_text) or None
    return normalize_text_value(name, value)


def attribute_tokens(name: str, value: Any) -> list[int]:
    """Tokens of one profile attribute value (already normalized; None gives none)."""
    if value is None or value == []:
        return []
    key = tuple(value) if isinstance(value, list) else value
    return list(_attribute_tokens(name, key))


@lru_cache(maxsize=100_000)
def _attribute_tokens(name: str, value: Any) -> tuple[int, ...]:
    return tuple(
        _compute_attribute_tokens(name, list(value) if isinstance(value, tuple) else value)
    )


@receiver(setting_changed)
def _forget_tokens(*, setting: str, **kwargs: Any) -> None:
    # Tokens depend on the blind-index key; tests that swap it must not see stale ones.
    if setting == "LUXMAIL_BLIND_INDEX_KEY":
        tokens.token.cache_clear()
        _attribute_tokens.cache_clear()
        _name_tokens.cache_clear()


def _compute_attribute_tokens(name: str, value: Any) -> list[int]:
    attribute = PROFILE_ATTRIBUTES[name]
    field = attribute.token_field
    found = [tokens.exists_token(field)]
    if attribute.kind == "date":
        found += tokens.date_tokens(field, value)
    elif attribute.kind == "zip":
        found += [tokens.token("zip5", value[:5]), tokens.token("zip3", value[:3])]
    elif attribute.kind == "codes":
        found += tokens.text_tokens(
            field,
            sorted({normalize_text(prefix) for code in value for prefix in icd10_prefixes(code)}),
        )
    elif attribute.kind == "list":
        found += tokens.text_tokens(field, sorted({normalize_text(item) for item in value}))
    elif attribute.kind == "language":
        found += tokens.text_tokens(field, [normalize_text(p) for p in language_prefixes(value)])
    else:
        found.append(tokens.token(field, normalize_text(value)))
    return found


# --- custom fields ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CustomFieldDef:
    """What the value code needs of a :class:`~contacts.models.CustomField`."""

    key: str
    label: str
    kind: str
    phi: bool
    choices: tuple[str, ...]
    token_field: str

    @classmethod
    def of(cls, field: Any) -> CustomFieldDef:
        return cls(
            key=field.key,
            label=field.label,
            kind=field.kind,
            phi=field.phi,
            choices=tuple(field.choices or ()),
            token_field=f"custom:{field.uuid}",
        )


def normalize_custom(definition: CustomFieldDef, value: Any) -> Any:
    """The stored (JSON-safe) form of a custom field value; None for a blank value."""
    field = f"custom.{definition.key}"
    if is_blank(value):
        return None
    try:
        if definition.kind == CustomFieldKind.DATE:
            return parse_date(field, value).isoformat()
        if definition.kind == CustomFieldKind.NUMBER:
            return canonical_number(parse_decimal(field, value))
        if definition.kind == CustomFieldKind.CHOICE:
            return normalize_choice(field, value, definition.choices)
        return normalize_text_value(field, value)
    except ContactValueError as error:
        # Re-label with the Admin's name for the field.
        message = error.message.split(": ", 1)[-1]
        raise ContactValueError(field, f"{definition.label}: {message}") from None


def custom_tokens(definition: CustomFieldDef, value: Any) -> list[int]:
    if value is None:
        return []
    field = definition.token_field
    found = [tokens.exists_token(field)]
    if definition.kind == CustomFieldKind.DATE:
        found += tokens.date_tokens(field, dt.date.fromisoformat(value))
    else:
        found.append(tokens.token(field, normalize_text(str(value))))
    return found


def profile_tokens(
    attributes: Mapping[str, Any],
    custom: Mapping[str, Any],
    definitions: Mapping[str, CustomFieldDef],
) -> set[int]:
    """Every token of a profile: the one function services and ``bench/`` share."""
    found: set[int] = set()
    for name, value in attributes.items():
        # attribute_tokens() inlined (no list copy): an import tokenizes ~12 values a row.
        if name in PROFILE_ATTRIBUTES and value is not None and value != []:
            found.update(
                _attribute_tokens(name, tuple(value) if isinstance(value, list) else value)
            )
    for key, value in custom.items():
        definition = definitions.get(key)
        if definition is not None:
            found.update(custom_tokens(definition, value))
    return found


# --- identity search tokens (issue 20: find a contact by name or phone) --------------------

NAME_PREFIX_MIN = 3
NAME_WORD_MAX = 30
_NAME_WORD = re.compile(r"[^\W_]+(?:['\u2019-][^\W_]+)*")


def name_words(value: str) -> list[str]:
    """The words of a name, normalized (NFKC, case-folded, accents removed), each cut to
    30 characters.

    "Mary-Jane O'Neil" → ``mary-jane``, ``mary``, ``jane``, ``o'neil``, ``o``, ``neil``:
    hyphenated and apostrophe names match both as a whole and by their parts.
    """
    found: list[str] = []
    # Accents fold away (López = Lopez): people type names without them.
    folded = "".join(
        ch
        for ch in unicodedata.normalize("NFKD", normalize_text(value))
        if not unicodedata.combining(ch)
    )
    for match in _NAME_WORD.finditer(folded):
        word = match.group()[:NAME_WORD_MAX]
        found.append(word)
        parts = [p for p in re.split(r"['\u2019-]", word) if p]
        if len(parts) > 1:
            found += parts
    return list(dict.fromkeys(found))


def name_query_tokens(word: str) -> int:
    """The token a search word must match: the whole word if short, else its prefix."""
    word = word[:NAME_WORD_MAX]
    if len(word) < NAME_PREFIX_MIN:
        return tokens.token("name", word)
    return tokens.token("name_prefix", word)


@lru_cache(maxsize=16_384)
def _name_tokens(value: str) -> tuple[int, ...]:
    """The tokens of one name (an import repeats first and last names a lot)."""
    found: dict[int, None] = {}
    for word in name_words(value):
        found[tokens.token("name", word)] = None
        for end in range(NAME_PREFIX_MIN, len(word) + 1):
            found[tokens.token("name_prefix", word[:end])] = None
    return tuple(found)


def identity_tokens(*, first_name: Any, last_name: Any, phone: Any) -> set[int]:
    """Blind-index tokens of a contact's name words and phone number.

    Every name word yields ``name:<word>`` and ``name_prefix:<p>`` for each prefix of 3
    characters or more, so "smi" finds Smith without the database ever seeing a name;
    the phone yields ``phone:<digits>`` (exact match only). Leakage is documented in
    docs/security.md ("Name and phone search").
    """
    found: set[int] = set()
    for value in (first_name, last_name):
        if value:
            found.update(_name_tokens(str(value)))
    if phone:
        found.add(tokens.token("phone", str(phone)))
    return found
