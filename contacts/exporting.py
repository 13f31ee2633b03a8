"""Contact export to CSV or XLSX: all contacts, one segment or one static list.

* PHI columns (identity in clear, health profile, PHI custom fields) only with
  ``luxmail.export_phi``; everyone else gets the non-PHI columns with the identity
  masked (``a***@example.org``), as in the UI.
* One ``phi.access`` (the export decrypts, even to mask) and one ``contacts.export``
  event (row count, whether PHI was included, scope) per export, both recorded before
  the first byte is sent. Contacts are decrypted in chunks through
  ``contacts.selectors`` with that one access.
* Spreadsheet formula injection is neutralized: a cell starting with ``=``, ``+``,
  ``-``, ``@``, tab or carriage return gets a leading ``'`` (OWASP "CSV injection"),
  so a value such as ``=HYPERLINK(...)`` is shown as text, never evaluated.

CSV streams row by row; XLSX is built with openpyxl's write-only workbook (constant
memory per row). django-import-export's formats are not used here: tablib builds the
whole sheet in memory and its formula escaping only strips a leading ``=``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from contacts import segments, selectors
from contacts.attributes import PROFILE_ATTRIBUTES
from contacts.models import (
    ConsentPurpose,
    Contact,
    ContactList,
    ContactProfile,
    CustomField,
    ListMembership,
    Segment,
)
from contacts.services import ContactsError
from luxmail import audit, crypto
from luxmail.actors import Actor, actor_has_perm

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
CHUNK = 1000
FORMATS = {
    "csv": ("text/csv; charset=utf-8", "csv"),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
}


class ExportError(ContactsError):
    pass


def neutralize(value: Any) -> str:
    """The cell text, with a ``'`` in front of anything a spreadsheet would evaluate."""
    if value is None:
        return ""
    if isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, dt.datetime):
        text = value.isoformat(timespec="seconds")
    elif isinstance(value, dt.date):
        text = value.isoformat()
    elif isinstance(value, list | tuple):
        text = "; ".join(str(v) for v in value)
    else:
        text = str(value)
    if text.startswith(FORMULA_PREFIXES):
        return "'" + text
    return text


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    phi: bool = False


@dataclass(frozen=True)
class ExportScope:
    """What to export: everything, one segment, one list or the ids a bulk job froze."""

    segment: Segment | None = None
    contact_list: ContactList | None = None
    contact_ids: tuple[int, ...] | None = None

    @property
    def kind(self) -> str:
        if self.contact_ids is not None:
            return "selection"
        return "segment" if self.segment else "list" if self.contact_list else "all"

    def label(self) -> str:
        if self.contact_ids is not None:
            return "selection"
        if self.segment is not None:
            return f"segment-{self.segment.pk}"
        if self.contact_list is not None:
            return f"list-{self.contact_list.pk}"
        return "all"

    def queryset(self) -> QuerySet[Contact]:
        if self.contact_ids is not None:
            return Contact.objects.filter(pk__in=self.contact_ids)
        if self.segment is not None:
            return segments.matching(self.segment.rules)
        if self.contact_list is not None:
            return selectors.contacts_in_list(contact_list=self.contact_list)
        return Contact.objects.all()


def export_columns(*, include_phi: bool) -> list[Column]:
    """The columns of an export, in order; PHI ones only when ``include_phi``."""
    cols = [
        Column("uuid", "id"),
        Column("external_id", "external_id"),
        Column("email", "email" if include_phi else "email (masked)"),
        Column("first_name", "first_name" if include_phi else "first_name (masked)"),
        Column("last_name", "last_name" if include_phi else "last_name (masked)"),
        Column("phone", "phone" if include_phi else "phone (masked)"),
        Column("domain", "email_domain"),
        Column("status", "status"),
        Column("time_zone", "time_zone"),
        Column("created_at", "created_at"),
        Column("updated_at", "updated_at"),
    ]
    cols += [Column(f"consent.{p}", f"consent_{p}") for p in ConsentPurpose.values]
    cols += [Column("suppressed", "suppressed"), Column("lists", "lists")]
    for custom in CustomField.objects.order_by("key"):
        if include_phi or not custom.phi:
            cols.append(Column(f"custom.{custom.key}", f"custom.{custom.key}", phi=custom.phi))
    if include_phi:
        cols += [Column(name, name, phi=True) for name in PROFILE_ATTRIBUTES]
    return cols


def may_export_phi(user: Any) -> bool:
    return bool(user is not None and user.has_perm("luxmail.export_phi"))


@dataclass
class Export:
    """A prepared export: audited already; iterate ``rows()`` or call ``render()``."""

    scope: ExportScope
    include_phi: bool
    columns: list[Column]
    ids: list[int]
    access: crypto.Access
    actor: Actor
    fmt: str

    @property
    def count(self) -> int:
        return len(self.ids)

    @property
    def filename(self) -> str:
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
        return f"contacts-{self.scope.label()}-{stamp}.{FORMATS[self.fmt][1]}"

    @property
    def content_type(self) -> str:
        return FORMATS[self.fmt][0]

    def rows(self) -> Iterator[list[str]]:
        """The header, then one row per contact (values neutralized)."""
        yield [neutralize(c.header) for c in self.columns]
        for start in range(0, len(self.ids), CHUNK):
            chunk = self.ids[start : start + CHUNK]
            yield from self._chunk_rows(chunk)

    def _chunk_rows(self, ids: Sequence[int]) -> Iterator[list[str]]:
        order = {pk: i for i, pk in enumerate(ids)}
        contacts = sorted(
            Contact.objects.filter(pk__in=ids).select_related("profile"),
            key=lambda c: order[c.pk],
        )
        now = timezone.now()
        consent = {
            purpose: set(
                Contact.objects.filter(pk__in=ids)
                .filter(segments.consent_present_q(purpose, now))
                .values_list("pk", flat=True)
            )
            for purpose in ConsentPurpose.values
        }
        suppressed = set(
            Contact.objects.filter(pk__in=ids)
            .filter(selectors.suppressed_q())
            .values_list("pk", flat=True)
        )
        lists: dict[int, list[str]] = {}
        for contact_id, name in ListMembership.objects.filter(contact_id__in=ids).values_list(
            "contact_id", "contact_list__name"
        ):
            lists.setdefault(contact_id, []).append(name)
        if self.include_phi:
            revealed = selectors.contacts_phi(
                contacts=contacts, actor=self.actor, access=self.access
            )
        else:
            masked = selectors.contacts_masked(
                contacts=contacts, actor=self.actor, access=self.access
            )
            revealed = {pk: identity.as_dict() for pk, identity in masked.items()}
        for contact in contacts:
            values = revealed[contact.pk]
            custom = dict(values.get("custom") or {}) if self.include_phi else _plain(contact)
            base: dict[str, Any] = {
                "uuid": contact.uuid,
                "external_id": contact.external_id,
                "domain": contact.domain,
                "status": contact.status,
                "time_zone": contact.time_zone,
                "created_at": contact.created_at,
                "updated_at": contact.updated_at,
                "suppressed": contact.pk in suppressed,
                "lists": sorted(lists.get(contact.pk, [])),
            }
            row: list[str] = []
            for column in self.columns:
                if column.key.startswith("consent."):
                    value: Any = contact.pk in consent[column.key.removeprefix("consent.")]
                elif column.key.startswith("custom."):
                    value = custom.get(column.key.removeprefix("custom."))
                elif column.key in base:
                    value = base[column.key]
                else:
                    value = values.get(column.key)
                row.append(neutralize(value))
            yield row

    def csv_chunks(self) -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        for row in self.rows():
            writer.writerow(row)
            if buffer.tell() > 64 * 1024:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    def xlsx_bytes(self) -> bytes:
        # heavy import, needed only when an .xlsx file is written
        from openpyxl import Workbook
        from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

        book = Workbook(write_only=True)
        sheet = book.create_sheet("Contacts")
        for row in self.rows():
            # Strings only, each neutralized: openpyxl turns text starting with '=' into a
            # formula, and refuses control characters.
            sheet.append([ILLEGAL_CHARACTERS_RE.sub("", cell) for cell in row])
        out = io.BytesIO()
        book.save(out)
        return out.getvalue()


def _plain(contact: Contact) -> dict[str, Any]:
    try:
        return dict(contact.profile.custom or {})
    except ContactProfile.DoesNotExist:
        return {}


def contacts_export(
    *,
    scope: ExportScope,
    fmt: str,
    actor: Actor,
    want_phi: bool,
    request: HttpRequest | None = None,
) -> Export:
    """Prepare (and audit) an export of ``scope``; PHI only if asked for and permitted.

    A user without ``luxmail.export_phi`` gets the masked, non-PHI columns whatever
    ``want_phi`` says. Exporting a segment built on PHI conditions needs
    ``luxmail.view_phi`` (its membership is derived from PHI). Audits one
    ``phi.access`` and one ``contacts.export`` (rows, phi, format, scope). Raises
    :class:`ExportError` for an unknown format or a refused segment.
    """
    if fmt not in FORMATS:
        raise ExportError("Choose CSV or XLSX.")
    if scope.segment is not None and not actor_has_perm(actor, "luxmail.view_phi"):
        used = segments.fields_used(scope.segment.rules)
        kinds = [segments.kind_for(name) for name in used]
        if any(kind is None or kind.phi for kind in kinds):
            raise ExportError(
                "This segment selects contacts by PHI; exporting it needs the PHI Marketer role."
            )
    include_phi = bool(want_phi and may_export_phi(actor))
    ids = list(scope.queryset().order_by("pk").values_list("pk", flat=True))
    details = {
        "rows": len(ids),
        "phi": include_phi,
        "format": fmt,
        "scope": scope.kind,
        "segment": scope.segment.pk if scope.segment else None,
        "list": scope.contact_list.pk if scope.contact_list else None,
    }
    access = crypto.phi_access(
        actor=actor,
        purpose="contacts.export" if include_phi else "contacts.export_masked",
        request=request,
        details={"rows": len(ids)},
    )
    audit.record("contacts.export", actor=actor, request=request, phi=include_phi, details=details)
    return Export(
        scope=scope,
        include_phi=include_phi,
        columns=export_columns(include_phi=include_phi),
        ids=ids,
        access=access,
        actor=actor,
        fmt=fmt,
    )
