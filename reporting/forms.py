"""Forms of the reporting UI (webhook settings)."""

from __future__ import annotations

from django import forms

from luxmail import org
from reporting import reports
from reporting.models import WebhookDelivery, WebhookEventType


class WebhookEndpointForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="Who receives it, e.g. 'Epic integration'.")
    url = forms.CharField(
        max_length=2000,
        label="URL",
        help_text="Where LuxMail POSTs signed JSON events. Must start with https://.",
        widget=forms.URLInput(attrs={"inputmode": "url", "autocomplete": "off"}),
    )
    event_types = forms.MultipleChoiceField(
        choices=WebhookEventType.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text="Events this endpoint receives. Payloads carry ids only, never PHI.",
    )


class DeliveryFilterForm(forms.Form):
    status = forms.ChoiceField(
        required=False, choices=[("", "All statuses"), *WebhookDelivery.Status.choices]
    )


class ReportFilterForm(forms.Form):
    """The report page's filters (GET). Empty fields mean "all"."""

    start = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    end = forms.DateField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"})
    )
    campaign = forms.TypedChoiceField(required=False, coerce=int, empty_value=None)
    channel = forms.ChoiceField(required=False)
    domain = forms.CharField(required=False, max_length=253, label="Recipient domain")
    marketing_id = forms.CharField(required=False, max_length=100, label="Marketing id")
    from_address = forms.CharField(required=False, max_length=254, label="From address")
    split = forms.ChoiceField(required=False, label="Split by")
    sort = forms.CharField(required=False, max_length=40, widget=forms.HiddenInput)
    dir = forms.ChoiceField(
        required=False, choices=[("desc", "desc"), ("asc", "asc")], widget=forms.HiddenInput
    )

    def __init__(self, *args: object, **kwargs: object) -> None:

        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

        self.fields["start"].help_text = self.fields["end"].help_text = org.time_zone_note()
        campaign = self.fields["campaign"]
        assert isinstance(campaign, forms.ChoiceField)
        campaign.choices = [("", "All campaigns"), *reports.campaign_choices()]
        channel = self.fields["channel"]
        assert isinstance(channel, forms.ChoiceField)
        channel.choices = [("", "All channels")] + [
            (code, label) for code, label in reports.CHANNEL_LABELS.items() if code
        ]
        split = self.fields["split"]
        assert isinstance(split, forms.ChoiceField)
        split.choices = reports.SPLIT_CHOICES

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        start, end = data.get("start"), data.get("end")
        if start and end and end < start:
            raise forms.ValidationError("The end date is before the start date.")
        return data

    def filters(self) -> object:

        data = self.cleaned_data if self.is_valid() else {}
        campaign = data.get("campaign")
        return reports.Filters(
            start=data.get("start"),
            end=data.get("end"),
            campaign_ids=(campaign,) if campaign else (),
            channels=(data["channel"],) if data.get("channel") else (),
            domain=data.get("domain") or "",
            marketing_id=data.get("marketing_id") or "",
            from_address=data.get("from_address") or "",
        )


class TrackingOptionsForm(forms.Form):
    honeypot = forms.BooleanField(
        required=False,
        label="Add a hidden honeypot link",
        help_text="An invisible link in every message; whoever follows it is a machine, and "
        "the clicks around it are labelled automated.",
    )
