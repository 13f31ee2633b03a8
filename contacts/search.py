"""Finding contacts: one search box, filters and keyset pages (issue 20).

The search text may be PHI (a name, an address, a phone number), so it is reduced at
once to blind-index values and ids (:meth:`ContactQuery.as_spec`); the database, the
URL, the logs and the bulk-job rows only ever see that spec, never the text. Nothing
here decrypts: names and phones are matched through the tokens
``contacts.attributes.identity_tokens`` writes into :class:`ContactTokenSet`.

Pages are keyset pages over ``id`` descending (``id < cursor``), so page 1,000 of ten
million contacts costs what page 1 costs.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from contacts import attributes, browse_sources, segments, upsert
from contacts.attributes import ContactValueError
from contacts.models import (
    ConsentPurpose,
    Contact,
    ContactStatus,
    ContactTag,
    ListMembership,
    Suppression,
    SuppressionReason,
)
from contacts.selectors import suppressed_q

MAX_SEARCH_CHARS = 200
MAX_NAME_WORDS = 5
MAX_EXTERNAL_ID = 100
PAGE_SIZE = 50
_PHONE = re.compile(r"\+?[\d\s().\-/]{7,25}")

CONSENT_CHOICES = [
    *[
        (f"{p}:yes", f"Has {label.split(' (')[0].lower()} consent")
        for p, label in ConsentPurpose.choices
    ],
    *[
        (f"{p}:no", f"No {label.split(' (')[0].lower()} consent")
        for p, label in ConsentPurpose.choices
    ],
]
SUPPRESSION_CHOICES = [("yes", "Suppressed"), ("no", "Not suppressed")]


class SearchError(ValueError):
    """The search text cannot be used; ``message`` is safe to show (never echoes it)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class ContactQuery:
    """Non-PHI filters plus an already-blinded search (see :func:`blind_search`)."""

    search: dict[str, Any] = field(default_factory=dict)
    status: str = ""
    list_id: int | None = None
    tag_id: int | None = None
    consent: str = ""
    suppressed: str = ""
    suppression_reason: str = ""
    bounce_reason: str = ""

    def as_spec(self) -> dict[str, Any]:
        """JSON for a bulk job: ids, tokens and choice values only."""
        return {
            "search": self.search,
            "status": self.status,
            "list_id": self.list_id,
            "tag_id": self.tag_id,
            "consent": self.consent,
            "suppressed": self.suppressed,
            "suppression_reason": self.suppression_reason,
            "bounce_reason": self.bounce_reason,
        }

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> ContactQuery:
        return cls(
            search=dict(spec.get("search") or {}),
            status=str(spec.get("status") or ""),
            list_id=int_or_none(spec.get("list_id")),
            tag_id=int_or_none(spec.get("tag_id")),
            consent=str(spec.get("consent") or ""),
            suppressed=str(spec.get("suppressed") or ""),
            suppression_reason=str(spec.get("suppression_reason") or ""),
            bounce_reason=str(spec.get("bounce_reason") or "")[:32],
        )

    def filter_params(self) -> dict[str, Any]:
        """The non-PHI filters alone (what a saved view or a URL may carry)."""
        spec = self.as_spec()
        spec.pop("search")
        return {k: v for k, v in spec.items() if v not in ("", None)}


def int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def blind_search(text: str) -> dict[str, Any]:
    """Turn what a user typed into blind-index values; the text itself is dropped.

    * an address (has ``@``) → its email blind index (exact);
    * a phone number → its phone token (exact), or an external id equal to it;
    * anything else → name words (each matches a whole word, or the start of one when
      it has 3 characters or more; all words must match), or an external id equal to
      the whole text.

    Raises :class:`SearchError` for text that is too long or has no usable word; the
    error never repeats the text.
    """
    if len(text) > MAX_SEARCH_CHARS * 4:
        raise SearchError(f"Search: at most {MAX_SEARCH_CHARS} characters.")
    # Control and format characters (NUL, bidi overrides) are never part of a name.
    text = " ".join("".join(ch for ch in text if unicodedata.category(ch)[0] != "C").split())
    if not text:
        return {}
    if len(text) > MAX_SEARCH_CHARS:
        raise SearchError(f"Search: at most {MAX_SEARCH_CHARS} characters.")
    external = None
    if len(text) <= MAX_EXTERNAL_ID:
        external = Contact.objects.filter(external_id=text).values_list("pk", flat=True).first()
    if "@" in text:
        try:
            address, _ = attributes.normalize_email(text)
        except ContactValueError:
            raise SearchError("Search: that is not a valid email address.") from None
        return {"email_bidx": upsert.email_bidx(address).hex()}
    if _PHONE.fullmatch(text):
        try:
            phone = attributes.normalize_phone(text)
        except ContactValueError:
            phone = ""
        if phone:
            return {
                "phone_token": attributes.tokens.token("phone", phone),
                "external_contact": external,
            }
    # A query word is matched whole ("mary-jane" as typed); name_words() would add parts.
    words = [found[0] for found in (attributes.name_words(part) for part in text.split()) if found]
    if len(words) > MAX_NAME_WORDS:
        raise SearchError(f"Search: at most {MAX_NAME_WORDS} words of a name.")
    if not words and external is None:
        raise SearchError("Search: type a name, an email address, a phone number or an id.")
    return {
        "name_tokens": [attributes.name_query_tokens(word) for word in words],
        "external_contact": external,
    }


def _search_q(search: dict[str, Any]) -> Q | None:
    if not search:
        return None
    if "email_bidx" in search:
        try:
            return Q(email_bidx=bytes.fromhex(str(search["email_bidx"])))
        except ValueError:
            return Q(pk__in=[])
    found: Q | None = None
    if "phone_token" in search:
        found = Q(tokenset__tokens__overlaps=[int(search["phone_token"])])
    names = [int(t) for t in search.get("name_tokens") or []][:MAX_NAME_WORDS]
    if names:
        q = Q()
        for item in names:
            # One overlap test per word: every word must match (AND).
            q &= Q(tokenset__tokens__overlaps=[item])
        found = q if found is None else found | q
    external = int_or_none(search.get("external_contact"))
    if external is not None:
        found = Q(pk=external) if found is None else found | Q(pk=external)
    return found if found is not None else Q(pk__in=[])


def contacts_matching(query: ContactQuery) -> QuerySet[Contact]:
    """Every contact the query selects, newest first (lazy; no PHI read)."""
    found = Contact.objects.all()
    search = _search_q(query.search)
    if search is not None:
        found = found.filter(search)
    if query.status in ContactStatus.values:
        found = found.filter(status=query.status)
    if query.list_id is not None:
        found = found.filter(
            Exists(
                ListMembership.objects.filter(contact_list_id=query.list_id, contact=OuterRef("pk"))
            )
        )
    if query.tag_id is not None:
        found = found.filter(
            Exists(ContactTag.objects.filter(tag_id=query.tag_id, contact=OuterRef("pk")))
        )
    purpose, _, wanted = query.consent.partition(":")
    if purpose in ConsentPurpose.values and wanted in ("yes", "no"):
        present = segments.consent_present_q(purpose, timezone.now())
        found = found.filter(present) if wanted == "yes" else found.exclude(present)
    if query.suppressed == "yes":
        found = found.filter(suppressed_q())
    elif query.suppressed == "no":
        found = found.exclude(suppressed_q())
    if query.suppression_reason in SuppressionReason.values:
        found = found.filter(
            Exists(
                Suppression.objects.filter(
                    email_bidx=OuterRef("email_bidx"),
                    removed_at__isnull=True,
                    reason=query.suppression_reason,
                )
            )
        )
    if query.bounce_reason:
        found = found.filter(browse_sources.bounce_reason_q(query.bounce_reason))
    return found.order_by("-id")


@dataclass(frozen=True)
class KeysetPage:
    rows: list[Contact]
    next_cursor: int | None


def contacts_page(
    query: ContactQuery, *, after: int | None = None, size: int = PAGE_SIZE
) -> KeysetPage:
    """One page of :func:`contacts_matching` after the contact id ``after`` (keyset)."""
    found = contacts_matching(query)
    if after is not None:
        found = found.filter(pk__lt=after)
    rows = list(found.select_related("profile")[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    return KeysetPage(rows=rows, next_cursor=rows[-1].pk if more and rows else None)
