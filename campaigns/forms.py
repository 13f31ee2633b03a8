"""Forms of the campaigns UI; rendered through templates/form_fields.html."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import forms
from django.utils import timezone

from campaigns.models import Campaign, DkimAlgorithm, EmailTemplate, SenderIdentity, SigningKind
from campaigns.sending.feedback.types import Reason
from campaigns.services import past_time_message
from contacts.models import ContactList, Segment
from luxmail import org
from luxmail.models import SecurePolicy


class TemplateForm(forms.Form):
    name = forms.CharField(max_length=200)
    subject = forms.CharField(
        max_length=998, help_text="Jinja2, e.g. {{ contact.first_name }}, your visit"
    )
    html = forms.CharField(
        label="HTML body",
        widget=forms.Textarea(attrs={"rows": 18, "spellcheck": "false", "class": "code"}),
        help_text="Use contact.*, org.*, unsubscribe_url, preferences_url; phi.* makes the "
        "template PHI-bearing. An unsubscribe link and the postal address are added when "
        "missing.",
    )
    text = forms.CharField(
        label="Text body",
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false", "class": "code"}),
        help_text="Optional: generated from the HTML when empty.",
    )
    preview_contact = forms.IntegerField(
        required=False,
        label="Preview with contact #",
        help_text="Empty: sample data. A real contact's data is shown only to PHI roles and "
        "the view is audited.",
    )
    preview_missing = forms.BooleanField(
        required=False,
        label="As a contact with missing fields",
        help_text="Preview as if every contact and PHI field the template uses were empty: "
        "shows the defaults, or that such a contact would be skipped.",
    )


class SenderForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="Shown in LuxMail only.")
    from_name = forms.CharField(max_length=200)
    from_email = forms.EmailField()
    reply_to = forms.EmailField(required=False)
    postal_address = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Printed in every message; the organization's address when empty.",
    )
    dkim_algorithm = forms.ChoiceField(
        choices=DkimAlgorithm.choices, initial=DkimAlgorithm.RSA, label="DKIM key"
    )
    dkim_selector = forms.CharField(
        max_length=63, required=False, help_text="Default: lm<year><month>."
    )
    dkim_domain = forms.CharField(
        max_length=253, required=False, help_text="Default: the From address's domain."
    )


NO_FOOTER = "no footer — transactional only"


class TemplateChoiceField(forms.ModelChoiceField):
    """Templates by name; those without the locked footer (marketing refuses them) are
    marked as such in the list."""

    def label_from_instance(self, obj: Any) -> str:
        if obj.has_locked_footer:
            return str(obj)
        return f"{obj} ({NO_FOOTER})"


class CampaignForm(forms.Form):
    name = forms.CharField(max_length=200)
    marketing_id = forms.CharField(
        max_length=100, required=False, help_text="A tag reports group by, e.g. FLU-2026."
    )
    report_field = forms.CharField(max_length=200, required=False, label="Custom report value")
    segments = forms.ModelMultipleChoiceField(
        Segment.objects.order_by("name"), required=False, widget=forms.CheckboxSelectMultiple
    )
    lists = forms.ModelMultipleChoiceField(
        ContactList.objects.order_by("name"), required=False, widget=forms.CheckboxSelectMultiple
    )
    exclude_segments = forms.ModelMultipleChoiceField(
        Segment.objects.order_by("name"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Exclude segments",
    )
    exclude_lists = forms.ModelMultipleChoiceField(
        ContactList.objects.order_by("name"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Exclude lists",
    )
    template = TemplateChoiceField(
        EmailTemplate.objects.order_by("name"),
        required=False,
        help_text="Marketing needs the organization's locked footer: a template marked "
        f"“{NO_FOOTER}” gets it with “Add the organization footer” on its page, or in the "
        "visual editor.",
    )
    sender = forms.ModelChoiceField(
        SenderIdentity.objects.order_by("name"), required=False, label="Sender identity"
    )
    preheader = forms.CharField(
        max_length=200,
        required=False,
        help_text="Preview text shown after the subject in inbox lists. Plain text; no PHI.",
    )
    secure_policy = forms.ChoiceField(choices=SecurePolicy.choices, label="Secure delivery")
    throttle_per_minute = forms.IntegerField(
        min_value=1, required=False, help_text="Messages per minute; empty: as fast as possible."
    )
    track_opens = forms.BooleanField(required=False, initial=True)
    track_clicks = forms.BooleanField(required=False, initial=True)

    AUDIENCE = ("segments", "lists", "exclude_segments", "exclude_lists")
    DETAILS = ("name", "marketing_id", "report_field")
    CONTENT = ("template", "sender", "preheader")
    DELIVERY = ("secure_policy", "throttle_per_minute", "track_opens", "track_clicks")

    def section(self, names: tuple[str, ...]) -> list[forms.BoundField]:
        return [self[name] for name in names]

    @property
    def section_details(self) -> list[forms.BoundField]:
        return self.section(self.DETAILS)

    @property
    def section_audience(self) -> list[forms.BoundField]:
        return self.section(self.AUDIENCE)

    @property
    def section_content(self) -> list[forms.BoundField]:
        return self.section(self.CONTENT)

    @property
    def section_delivery(self) -> list[forms.BoundField]:
        return self.section(self.DELIVERY)


class ScheduleForm(forms.Form):
    at = forms.DateTimeField(
        required=False,
        label="Send at",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="Empty: send now.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["at"].help_text = f"Empty: send now. {org.time_zone_note()}"

    def clean_at(self) -> datetime | None:
        at: datetime | None = self.cleaned_data.get("at")
        if at is not None and at <= timezone.now():
            raise forms.ValidationError(past_time_message(at))
        return at


class TestSendForm(forms.Form):
    addresses = forms.CharField(
        required=False,
        label="Seed addresses",
        help_text="Up to 10, separated by commas; the organization's seed list is filled in "
        "(Settings). They get sample data, never a contact's.",
    )


class SigningKeyForm(forms.Form):
    """Upload the organization's signing key (file or pasted text)."""

    kind = forms.ChoiceField(choices=SigningKind.choices, widget=forms.HiddenInput)
    private_key = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "autocomplete": "off", "spellcheck": "false"}),
        help_text="Paste the private key (S/MIME: PEM; OpenPGP: ASCII-armored secret key) "
        "or choose its file below.",
    )
    private_key_file = forms.FileField(required=False, label="Private key file")
    certificate = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}),
        label="Certificate (S/MIME only)",
        help_text="The signing certificate, PEM; its chain may follow it.",
    )
    certificate_file = forms.FileField(required=False, label="Certificate file (S/MIME only)")
    passphrase = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
        help_text="Only if the private key is protected by one.",
    )

    def _text_or_file(self, name: str) -> str:
        upload = self.cleaned_data.get(f"{name}_file")
        if upload is not None:
            if upload.size > 64 * 1024:
                raise forms.ValidationError("The file is larger than 64 KB: not a key.")
            return bytes(upload.read()).decode("utf-8", errors="replace")
        return str(self.cleaned_data.get(name) or "")

    def clean(self) -> dict[str, object]:
        cleaned = super().clean() or {}
        cleaned["private_key"] = self._text_or_file("private_key")
        cleaned["certificate"] = self._text_or_file("certificate")
        if not cleaned["private_key"].strip():
            raise forms.ValidationError("Paste the private key or choose its file.")
        return cleaned


class BounceFilterForm(forms.Form):
    """Filters of the bounce and complaint list (GET)."""

    kind = forms.ChoiceField(
        required=False,
        choices=[
            ("", "Bounces and complaints"),
            ("hard", "Hard bounces"),
            ("soft", "Soft bounces"),
            ("complaint", "Complaints"),
        ],
    )
    reason = forms.ChoiceField(required=False)
    provider = forms.ChoiceField(required=False)
    campaign: forms.ModelChoiceField[Campaign] = forms.ModelChoiceField(
        required=False, queryset=Campaign.objects.none(), empty_label="Any campaign"
    )
    sender = forms.ModelChoiceField(
        required=False,
        queryset=SenderIdentity.objects.order_by("name"),
        label="Identity",
        empty_label="Any identity",
    )

    def __init__(self, *args: Any, providers: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        reason_field: Any = self.fields["reason"]
        reason_field.choices = [("", "Any reason"), ("complaint", "complaint")] + [
            (r.value, r.value.replace("_", " ")) for r in Reason
        ]
        provider_field: Any = self.fields["provider"]
        provider_field.choices = [("", "Any provider")] + [(p, p) for p in providers]
        campaign_field: Any = self.fields["campaign"]
        campaign_field.queryset = Campaign.objects.filter(transactional=False).order_by("-id")[:200]


class FeedbackPolicyForm(forms.Form):
    soft_bounce_limit = forms.IntegerField(
        min_value=1, max_value=50, label="Soft bounces that suppress"
    )
    soft_bounce_days = forms.IntegerField(min_value=1, max_value=365, label="… within days")
    autopause_min_messages = forms.IntegerField(
        min_value=1, label="Auto-pause: look at rates after messages"
    )
    autopause_hard_bounce_percent = forms.DecimalField(
        min_value=0.01,
        max_value=100,
        decimal_places=2,
        label="Auto-pause: hard-bounce rate above %",
    )
    autopause_complaint_percent = forms.DecimalField(
        min_value=0.001, max_value=100, decimal_places=3, label="Auto-pause: complaint rate above %"
    )
    autopause_provider_blocks = forms.IntegerField(
        min_value=1, label="Auto-pause: sender-side refusals from one provider"
    )


class ApprovalDecisionForm(forms.Form):
    """A Compliance Officer's decision on a PHI campaign (the two submit buttons)."""

    decision = forms.ChoiceField(choices=[("approve", "Approve"), ("reject", "Reject")])
    note = forms.CharField(
        required=False,
        max_length=500,
        label="Note (optional)",
        help_text="Why, for the author and the audit trail. Never PHI.",
        widget=forms.Textarea(attrs={"rows": 2}),
    )
