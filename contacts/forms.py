"""Forms of the contacts UI. They collect text; ``contacts.services`` validates values.

Contact values are not re-validated here: the services run ``contacts/upsert.py`` and
their errors (:class:`~contacts.services.ContactInvalid`) are put back next to the
field they name. Forms only shape the input (widgets, choices, required-ness).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from django import forms
from django.utils import timezone

from contacts.attributes import PROFILE_ATTRIBUTES
from contacts.exporting import FORMATS
from contacts.imports import columns
from contacts.models import (
    ConsentPurpose,
    ConsentSource,
    ContactList,
    CustomField,
    CustomFieldKind,
    InsuranceType,
    JourneyStage,
    Segment,
    Sex,
    SuppressionReason,
)
from luxmail import org

IDENTITY_FIELDS = ("email", "first_name", "last_name", "phone", "external_id", "time_zone")
PHI_IDENTITY = ("email", "first_name", "last_name", "phone")
_PROFILE_CHOICES: dict[str, Sequence[tuple[str, str]]] = {
    "sex": Sex.choices,
    "insurance_type": InsuranceType.choices,
    "journey_stage": JourneyStage.choices,
}
_PROFILE_HELP = {
    "conditions": "ICD-10 codes separated by commas, e.g. E11.9, I10; type a name to search.",
    "medications": "Free text, separated by semicolons (no public RxNorm list is bundled).",
    "language": "Language code such as en, es or zh-hant.",
    "zip_code": "5 digits or ZIP+4.",
}


def _date_input() -> forms.DateInput:
    return forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class ContactForm(forms.Form):
    """Create or edit a contact. PHI fields exist only for users who may see PHI.

    ``editing_masked``: editing without PHI rights — identity fields are empty
    "replace with" inputs (blank keeps the stored value, which the user cannot see).
    """

    def __init__(
        self,
        *args: Any,
        phi: bool,
        custom_fields: Sequence[CustomField],
        editing_masked: bool = False,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        self.phi = phi
        self.editing_masked = editing_masked
        keep = " Leave blank to keep the current value." if editing_masked else ""
        self.fields["email"] = forms.CharField(
            label="Email",
            max_length=320,
            required=not editing_masked,
            widget=forms.EmailInput(attrs={"autocomplete": "off"}),
            help_text=keep.strip(),
        )
        self.fields["first_name"] = forms.CharField(
            label="First name", required=False, help_text=keep.strip()
        )
        self.fields["last_name"] = forms.CharField(
            label="Last name", required=False, help_text=keep.strip()
        )
        self.fields["phone"] = forms.CharField(
            label="Phone", required=False, help_text=("E.g. +16175550100." + keep).strip()
        )
        self.fields["external_id"] = forms.CharField(
            label="External id",
            required=False,
            help_text="Opaque EHR/CRM id. Never a medical record number or an SSN.",
        )
        self.fields["time_zone"] = forms.CharField(
            label="Time zone", required=False, help_text="IANA name, e.g. America/New_York."
        )
        if phi:
            for name, attribute in PROFILE_ATTRIBUTES.items():
                self.fields[name] = self._profile_field(name, attribute.label, attribute.kind)
        for custom in custom_fields:
            if custom.phi and not phi:
                continue
            self.fields[f"custom.{custom.key}"] = self._custom_field(custom)

    @staticmethod
    def _profile_field(name: str, label: str, kind: str) -> forms.Field:
        help_text = _PROFILE_HELP.get(name, "")
        if name in _PROFILE_CHOICES:
            return forms.ChoiceField(
                label=label, required=False, choices=[("", "—"), *_PROFILE_CHOICES[name]]
            )
        if kind == "date":
            return forms.CharField(label=label, required=False, widget=_date_input())
        if name == "conditions":
            # icd10-picker.js turns this into a combobox searching codes and names.
            return forms.CharField(
                label=label,
                required=False,
                help_text=help_text,
                widget=forms.TextInput(attrs={"data-icd10-picker": "list"}),
            )
        return forms.CharField(label=label, required=False, help_text=help_text)

    @staticmethod
    def _custom_field(custom: CustomField) -> forms.Field:
        label = custom.label + (" (PHI)" if custom.phi else "")
        if custom.kind == CustomFieldKind.CHOICE:
            return forms.ChoiceField(
                label=label,
                required=False,
                choices=[("", "—"), *((c, c) for c in custom.choices)],
                help_text=custom.help_text,
            )
        widget: forms.Widget = (
            _date_input()
            if custom.kind == CustomFieldKind.DATE
            else forms.NumberInput(attrs={"step": "any"})
            if custom.kind == CustomFieldKind.NUMBER
            else forms.TextInput()
        )
        return forms.CharField(
            label=label, required=False, widget=widget, help_text=custom.help_text
        )

    def service_data(self, current: dict[str, Any] | None = None) -> dict[str, Any]:
        """The input for ``contact_create`` / ``contact_update``.

        Creating: every non-blank field. Editing with PHI rights: the fields whose
        value differs from ``current`` (blank clears). Editing masked: the non-blank
        identity fields plus the visible non-PHI fields that changed.
        """
        data: dict[str, Any] = {}
        for name in self.fields:
            value = self.cleaned_data.get(name)
            value = value.strip() if isinstance(value, str) else value
            if current is None:
                if value:
                    data[name] = value
                continue
            if self.editing_masked and name in PHI_IDENTITY:
                if value:
                    data[name] = value
                continue
            if _shown(current.get(name)) != (value or ""):
                data[name] = value or None
        return data


def _shown(value: Any) -> str:
    """How a stored value appears in a form field (to tell what the user changed)."""
    if value is None:
        return ""
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def contact_initial(values: dict[str, Any]) -> dict[str, Any]:
    """Form initial data from decrypted values (lists joined, dates ISO, custom flattened).

    It is also what :meth:`ContactForm.service_data` compares the submitted form to.
    """
    initial = {name: _shown(values.get(name)) for name in (*IDENTITY_FIELDS, *PROFILE_ATTRIBUTES)}
    if values.get("medications"):
        initial["medications"] = "; ".join(values["medications"])
    for key, value in (values.get("custom") or {}).items():
        initial[f"custom.{key}"] = _shown(value)
    return initial


class ConsentGrantForm(forms.Form):
    purpose = forms.ChoiceField(choices=ConsentPurpose.choices)
    source = forms.ChoiceField(choices=ConsentSource.choices, initial=ConsentSource.STAFF)
    evidence_ref = forms.CharField(
        label="Evidence reference",
        required=False,
        max_length=200,
        help_text="Where the evidence is kept (form or document id). No PHI.",
    )
    granted_on = forms.DateField(
        label="Granted on", required=False, widget=_date_input(), help_text="Blank: now."
    )
    expires_on = forms.DateField(label="Expires on", required=False, widget=_date_input())

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)

        note = org.time_zone_note()
        self.fields["granted_on"].help_text = f"Blank: now. {note}"
        self.fields["expires_on"].help_text = note

    def granted_at(self) -> dt.datetime | None:
        day = self.cleaned_data.get("granted_on")
        if not day:
            return None
        return timezone.make_aware(dt.datetime.combine(day, dt.time.min))

    def expires_at(self) -> dt.datetime | None:
        day = self.cleaned_data.get("expires_on")
        if not day:
            return None
        return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


class ConsentRevokeForm(forms.Form):
    purpose = forms.ChoiceField(choices=ConsentPurpose.choices)
    note = forms.CharField(
        max_length=500, required=False, help_text="Why (required for a PHI authorization)."
    )


class SuppressionAddForm(forms.Form):
    reason = forms.ChoiceField(choices=SuppressionReason.choices, initial=SuppressionReason.MANUAL)
    note = forms.CharField(
        max_length=500, help_text="Why this address must not receive mail (no PHI)."
    )


class SuppressionRemoveForm(forms.Form):
    note = forms.CharField(
        label="Reason for removal", max_length=500, help_text="Required; kept in the history."
    )


class ListMembershipForm(forms.Form):
    contact_list = forms.ModelChoiceField(
        queryset=ContactList.objects.order_by("name"), label="Add to list"
    )


class ContactListForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class ListAddMemberForm(forms.Form):
    email = forms.EmailField(
        label="Add a contact by exact email address",
        max_length=320,
        widget=forms.EmailInput(attrs={"autocomplete": "off"}),
    )


class CustomFieldForm(forms.Form):
    key = forms.CharField(
        max_length=50, help_text="Lowercase letters, digits and _; used in imports and segments."
    )
    label = forms.CharField(max_length=100)
    kind = forms.ChoiceField(choices=CustomFieldKind.choices)
    phi = forms.BooleanField(
        label="PHI (encrypted, shown only to PHI roles)", required=False, initial=True
    )
    choices = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Choice fields: one allowed value per line.",
    )
    help_text = forms.CharField(label="Help text", required=False, max_length=200)

    def choice_list(self) -> list[str]:
        return [
            line.strip()
            for line in self.cleaned_data.get("choices", "").splitlines()
            if line.strip()
        ]


class CustomFieldEditForm(forms.Form):
    label = forms.CharField(max_length=100)
    choices = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One per line. Choices can be added, not removed.",
    )
    help_text = forms.CharField(label="Help text", required=False, max_length=200)

    def choice_list(self) -> list[str]:
        return [
            line.strip()
            for line in self.cleaned_data.get("choices", "").splitlines()
            if line.strip()
        ]


class SegmentForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    rules = forms.CharField(
        label="Rules (JSON)",
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false", "class": "rules-json"}),
        help_text="Written by the builder above; advanced users may edit it directly.",
    )


# --- import / export ----------------------------------------------------------------------


class ImportUploadForm(forms.Form):
    file = forms.FileField(
        label="CSV or XLSX file",
        help_text="The first row must hold the column names. Contacts are matched by email.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.xlsx"}),
    )


class ImportMappingForm(forms.Form):
    """One select per file column, plus the import's consent and list options."""

    def __init__(
        self,
        *args: Any,
        headers: Sequence[str],
        fields: Sequence[columns.ImportField],
        phi: bool,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        groups: dict[str, list[tuple[str, str]]] = {}
        for f in fields:
            label = f.label + (" — PHI role only" if f.phi and not phi else "")
            groups.setdefault(f.group, []).append((f.key, label))
        choices: list[Any] = [(columns.IGNORE, "Ignore this column")]
        choices += [(group, options) for group, options in groups.items()]
        self.headers = list(headers)
        for index, header in enumerate(self.headers):
            self.fields[f"col_{index}"] = forms.ChoiceField(
                label=header, choices=choices, required=False
            )
        self.fields["consent_source"] = forms.ChoiceField(
            label="Consent source",
            choices=ConsentSource.choices,
            initial=ConsentSource.IMPORT,
            help_text="Recorded on every consent this import grants (a column can override it).",
        )
        self.fields["evidence"] = forms.CharField(
            label="Evidence reference",
            required=False,
            max_length=200,
            help_text="Where the signed forms are kept, e.g. 'Intake batch 2026-03'. No PHI.",
        )
        self.fields["contact_list"] = forms.ModelChoiceField(
            label="Also add every imported contact to this list",
            queryset=ContactList.objects.order_by("name"),
            required=False,
            empty_label="No list",
        )

    def column_fields(self) -> list[forms.BoundField]:
        return [self[f"col_{i}"] for i in range(len(self.headers))]

    def option_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in ("consent_source", "evidence", "contact_list")]

    def mapping(self) -> dict[str, str]:
        return {
            header: self.cleaned_data.get(f"col_{i}") or columns.IGNORE
            for i, header in enumerate(self.headers)
        }


class ImportConfirmForm(forms.Form):
    skip_invalid = forms.BooleanField(
        required=False, label="Import the rows without errors and skip the others"
    )


class ExportForm(forms.Form):
    scope = forms.ChoiceField(
        choices=[("all", "All contacts"), ("segment", "A segment"), ("list", "A list")],
        initial="all",
        widget=forms.RadioSelect,
    )
    segment = forms.ModelChoiceField(
        queryset=Segment.objects.order_by("name"), required=False, empty_label="Choose a segment"
    )
    contact_list = forms.ModelChoiceField(
        label="List",
        queryset=ContactList.objects.order_by("name"),
        required=False,
        empty_label="Choose a list",
    )
    fmt = forms.ChoiceField(
        label="Format", choices=[(k, k.upper()) for k in FORMATS], initial="csv"
    )
    include_phi = forms.BooleanField(
        label="Include PHI columns (identity in clear, health profile, PHI custom fields)",
        required=False,
    )

    def __init__(self, *args: Any, may_export_phi: bool, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if not may_export_phi:
            del self.fields["include_phi"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("scope") == "segment" and not data.get("segment"):
            self.add_error("segment", "Choose the segment to export.")
        if data.get("scope") == "list" and not data.get("contact_list"):
            self.add_error("contact_list", "Choose the list to export.")
        return data
