from datetime import datetime
from typing import Any

from django import forms
from django.core.validators import validate_email
from django.utils import timezone
from timezone_field import TimeZoneFormField

from luxmail import org
from luxmail.api.scopes import SCOPE_CHOICES
from luxmail.models import HoldScope, OrgSettings


class OrgSettingsForm(forms.ModelForm):
    class Meta:
        model = OrgSettings
        fields = [
            "name",
            "postal_address",
            "footer_text",
            "default_secure_policy",
            "exclude_automated_events",
            "count_unknown_events",
            "require_passkey_for_admins",
            "require_passkey_for_phi_roles",
            "portal_expiry_days",
            "delivery_mode",
            "relay_enforces_tls",
            "encrypted_subject",
            "portal_notification_subject",
            "portal_notification_text",
            "portal_require_dob",
            "seed_addresses",
            "message_retention_days",
            "event_retention_days",
            "bounce_retention_days",
            "portal_retention_days",
            "import_retention_days",
            "contact_default_time_zone",
            "quiet_hours_start",
            "quiet_hours_end",
        ]
        widgets = {
            "postal_address": forms.Textarea(attrs={"rows": 3}),
            "footer_text": forms.Textarea(attrs={"rows": 3}),
            "portal_notification_text": forms.Textarea(attrs={"rows": 3}),
            "seed_addresses": forms.Textarea(attrs={"rows": 3}),
        }

    def clean_seed_addresses(self) -> str:
        text = str(self.cleaned_data.get("seed_addresses") or "")
        lines = [line.strip() for line in text.replace(",", "\n").splitlines() if line.strip()]
        if len(lines) > 10:
            raise forms.ValidationError("At most 10 seed addresses.")
        for line in lines:
            try:
                validate_email(line)
            except forms.ValidationError:
                raise forms.ValidationError(f"'{line[:80]}' is not an e-mail address.") from None
        return "\n".join(lines)

    # Only valid IANA zones are offered (django-timezone-field); stored as the name.
    contact_default_time_zone = TimeZoneFormField(
        required=False,
        label="Time zone of contacts without one",
        help_text="For local-time sends and quiet hours. Empty: the organization's time zone.",
    )

    def clean_contact_default_time_zone(self) -> str:
        zone = self.cleaned_data.get("contact_default_time_zone")
        return str(zone) if zone else ""


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="Who uses this key, e.g. 'Epic integration'.")
    scopes = forms.MultipleChoiceField(
        choices=SCOPE_CHOICES,
        widget=forms.CheckboxSelectMultiple,
        help_text="Grant only what the integration needs.",
    )
    expires_at = forms.DateTimeField(
        required=False,
        help_text="Optional. Format: YYYY-MM-DD HH:MM.",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )

    def clean_name(self) -> str:
        name = str(self.cleaned_data["name"]).strip()
        if not name:
            raise forms.ValidationError("Give the API key a name.")
        return name

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields[
            "expires_at"
        ].help_text = f"Optional. Format: YYYY-MM-DD HH:MM. {org.time_zone_note()}"

    def clean_expires_at(self) -> datetime | None:
        value = self.cleaned_data.get("expires_at")
        if value is not None and value <= timezone.now():
            raise forms.ValidationError("The expiry must be in the future.")
        return value


class AuditFilterForm(forms.Form):
    """The audit page's and the export's filters (``luxmail.selectors.audit_events``)."""

    actor = forms.CharField(
        required=False, max_length=200, help_text="Part of a username or API key label."
    )
    action = forms.CharField(
        required=False, max_length=64, help_text="Prefix: campaign. finds every campaign action."
    )
    target = forms.CharField(
        required=False,
        max_length=120,
        label="Object",
        help_text="A type (campaigns.campaign), an id or UUID, or type:id.",
    )
    date_from = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"})
    )
    phi_only = forms.BooleanField(required=False, label="PHI access only")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["date_to"].help_text = f"Both days included. {org.time_zone_note()}"

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            raise forms.ValidationError("The first day must not be after the last.")
        return data

    def filters(self) -> dict[str, Any]:
        """The given filters (valid form); empty values left out."""
        return {k: v for k, v in self.cleaned_data.items() if v}


class LegalHoldForm(forms.Form):
    """Place a hold: what (scope and id come from the page) and why (no PHI)."""

    scope = forms.ChoiceField(choices=HoldScope.choices, widget=forms.HiddenInput)
    object_id = forms.IntegerField(
        min_value=0, max_value=2**63 - 1, required=False, widget=forms.HiddenInput
    )
    reason = forms.CharField(
        max_length=500,
        help_text="The matter or ticket, e.g. 'Litigation hold, matter 2026-014'. No patient "
        "information.",
    )


class LegalHoldReleaseForm(forms.Form):
    reason = forms.CharField(
        max_length=500, help_text="Why the hold ends (no patient information)."
    )
