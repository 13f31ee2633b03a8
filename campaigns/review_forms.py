"""Forms of the campaign review page (preview, pre-send override), the list filters and
the calendar."""

from __future__ import annotations

import datetime as dt

from django import forms

from campaigns.listing import CampaignFilter
from campaigns.models import CampaignStatus, SenderIdentity


class PreviewForm(forms.Form):
    contact = forms.IntegerField(
        required=False, min_value=1, label="Sample contact (id)",
        help_text="Empty: sample data. A real contact's data needs a PHI-permitted role and "
        "is audited.",
    )  # fmt: skip
    missing = forms.BooleanField(required=False, label="As a contact with missing fields")


class PresendOverrideForm(forms.Form):
    note = forms.CharField(
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Why the campaign may go out despite the failing items (audited).",
    )


class CampaignFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=200, label="Search name or subject")
    status = forms.ChoiceField(
        required=False, choices=[("", "Any status"), *CampaignStatus.choices]
    )
    sender = forms.ModelChoiceField(
        SenderIdentity.objects.order_by("name"), required=False, empty_label="Any sender"
    )
    date_from = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"})
    )

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        start, end = data.get("date_from"), data.get("date_to")
        if isinstance(start, dt.date) and isinstance(end, dt.date) and start > end:
            raise forms.ValidationError("The start date is after the end date.")
        return data

    def filters(self) -> CampaignFilter:
        if not self.is_valid():
            return CampaignFilter()
        data = self.cleaned_data
        sender = data.get("sender")
        return CampaignFilter(
            status=data.get("status") or "",
            sender_id=sender.pk if sender else None,
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
            query=data.get("q") or "",
        )


class MonthForm(forms.Form):
    month = forms.RegexField(regex=r"^\d{4}-(0[1-9]|1[0-2])$", required=False)

    def year_month(self, today: dt.date) -> tuple[int, int]:
        if self.is_valid() and self.cleaned_data.get("month"):
            year, month = self.cleaned_data["month"].split("-")
            if 1970 <= int(year) <= 9999:
                return int(year), int(month)
        return today.year, today.month
