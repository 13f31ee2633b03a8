"""The form of a scheduled report (``reporting/schedule_views.py``)."""

from __future__ import annotations

from typing import Any

from django import forms

from reporting import reports, selectors
from reporting.models import ReportSchedule


class StaffChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        full = obj.get_full_name() if hasattr(obj, "get_full_name") else ""
        return f"{full} ({obj.username})" if full else str(obj.username)


class ReportScheduleForm(forms.Form):
    name = forms.CharField(
        max_length=120, help_text="Shown in the mail's subject, e.g. 'Weekly newsletter numbers'."
    )
    frequency = forms.ChoiceField(choices=ReportSchedule.Frequency.choices)
    format = forms.ChoiceField(
        choices=ReportSchedule.Format.choices,
        help_text="PDF: totals, the funnel and the first 40 rows. XLSX: every row.",
    )
    split = forms.ChoiceField(choices=reports.SPLIT_CHOICES, label="Split by")
    events = forms.ChoiceField(
        choices=list(reports.EVENT_SCOPES.items()), label="Events", initial="human"
    )
    recipients = StaffChoiceField(
        queryset=None,
        widget=forms.CheckboxSelectMultiple,
        help_text="Staff allowed to view reports who have an e-mail address.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["recipients"]
        assert isinstance(field, StaffChoiceField)
        field.queryset = selectors.report_staff()
