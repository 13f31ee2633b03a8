"""Forms of the contacts page: search, filters, bulk actions, tags, saved views (issue 20)."""

from __future__ import annotations

from typing import Any

from django import forms

from contacts import browse_sources, search
from contacts.models import BulkAction, ContactList, ContactStatus, SuppressionReason, Tag


class ContactSearchForm(forms.Form):
    q = forms.CharField(
        label="Search by name, email, phone or external id",
        required=False,
        max_length=search.MAX_SEARCH_CHARS,
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "type": "search", "placeholder": "e.g. Rivera or smi"}
        ),
        help_text="Names match whole words or their start (3 letters or more); "
        "email addresses and phone numbers match exactly. Searched through blind indexes.",
    )


class ContactFilterForm(forms.Form):
    """Non-PHI filters: they may travel in URLs and saved views."""

    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *ContactStatus.choices])
    contact_list = forms.ModelChoiceField(
        queryset=ContactList.objects.order_by("name"),
        required=False,
        empty_label="Any list",
        label="List",
    )
    tag = forms.ModelChoiceField(
        queryset=Tag.objects.order_by("name"), required=False, empty_label="Any tag", label="Tag"
    )
    consent = forms.ChoiceField(
        required=False, choices=[("", "Any consent"), *search.CONSENT_CHOICES], label="Consent"
    )
    suppressed = forms.ChoiceField(
        required=False,
        choices=[("", "Suppressed or not"), *search.SUPPRESSION_CHOICES],
        label="Suppression",
    )
    reason = forms.ChoiceField(
        required=False,
        choices=[("", "Any reason"), *SuppressionReason.choices],
        label="Suppression reason",
    )
    bounce = forms.ChoiceField(required=False, label="Bounce reason")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # from the registered source (campaigns), read per form: contacts cannot import it
        reasons = browse_sources.bounce_reason_choices()
        bounce = self.fields["bounce"]
        assert isinstance(bounce, forms.ChoiceField)
        bounce.choices = [("", "Any bounce or none"), *reasons]
        if not reasons:
            self.fields["bounce"].widget = forms.HiddenInput()

    def query(self, blinded: dict[str, Any] | None = None) -> search.ContactQuery:
        data = self.cleaned_data if self.is_valid() else {}
        return search.ContactQuery(
            search=blinded or {},
            status=data.get("status") or "",
            list_id=data["contact_list"].pk if data.get("contact_list") else None,
            tag_id=data["tag"].pk if data.get("tag") else None,
            consent=data.get("consent") or "",
            suppressed=data.get("suppressed") or "",
            suppression_reason=data.get("reason") or "",
            bounce_reason=data.get("bounce") or "",
        )

    @staticmethod
    def params_of(query: search.ContactQuery) -> dict[str, str]:
        """URL parameters for a query's non-PHI filters (the inverse of :meth:`query`)."""
        out = {
            "status": query.status,
            "contact_list": str(query.list_id or ""),
            "tag": str(query.tag_id or ""),
            "consent": query.consent,
            "suppressed": query.suppressed,
            "reason": query.suppression_reason,
            "bounce": query.bounce_reason,
        }
        return {k: v for k, v in out.items() if v}


class BulkForm(forms.Form):
    """A bulk action. Field names differ from the filter's (``contact_list``, ``tag``,
    ``reason``), which travel in the same POST as hidden inputs."""

    action = forms.ChoiceField(choices=[("", "Choose an action…"), *BulkAction.choices])
    scope = forms.ChoiceField(
        choices=[("selected", "Selected contacts"), ("all", "Every contact matching the filter")],
        initial="selected",
        widget=forms.RadioSelect,
        label="Apply to",
    )
    target_list = forms.ModelChoiceField(
        queryset=ContactList.objects.order_by("name"), required=False, label="List"
    )
    target_tag = forms.ModelChoiceField(
        queryset=Tag.objects.order_by("name"), required=False, label="Tag"
    )
    new_tag = forms.CharField(
        required=False, max_length=60, label="…or a new tag", help_text="Not PHI: a label."
    )
    suppress_reason = forms.ChoiceField(
        choices=SuppressionReason.choices,
        initial=SuppressionReason.MANUAL,
        required=False,
        label="Suppression reason",
    )
    confirm_delete = forms.BooleanField(
        required=False, label="Yes, delete these contacts (suppressions stay in force)"
    )
    export_phi = forms.BooleanField(
        required=False,
        label="Export: include PHI columns (only if your role may export PHI)",
    )
    q = forms.CharField(required=False, max_length=search.MAX_SEARCH_CHARS)


class TagForm(forms.Form):
    name = forms.CharField(max_length=60, label="New tag")


class SavedViewForm(forms.Form):
    name = forms.CharField(max_length=100, label="Save these filters as")
