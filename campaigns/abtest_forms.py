"""Forms of the A/B test and local-time pages (campaigns/abtest_views.py,
campaigns/delivery_plan_views.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms

from campaigns.forms import TemplateChoiceField
from campaigns.models import (
    MAX_VARIANTS,
    VARIANT_LABELS,
    ABTest,
    EmailTemplate,
    SenderIdentity,
    WinnerMetric,
)
from campaigns.services.abtests import VariantSpec
from luxmail import org


class ABTestForm(forms.Form):
    test_percent = forms.IntegerField(
        min_value=2,
        max_value=100,
        initial=20,
        label="Test share (%)",
        help_text="Share of the audience that gets a variant, split evenly at random.",
    )
    metric = forms.ChoiceField(
        choices=WinnerMetric.choices,
        initial=WinnerMetric.CLICK_RATE,
        label="Winner by",
        help_text="Counting human events only: automated and privacy-proxy events never decide.",
    )
    wait_hours = forms.IntegerField(
        min_value=1, max_value=24 * 14, initial=4, label="Choose the winner after (hours)"
    )
    min_sample = forms.IntegerField(
        min_value=1,
        max_value=10_000_000,
        initial=100,
        label="Minimum delivered per variant",
    )
    auto_send_winner = forms.TypedChoiceField(
        choices=[("1", "Send the winner to the rest automatically"), ("0", "Wait for my approval")],
        coerce=lambda value: value == "1",
        initial="1",
        widget=forms.RadioSelect,
        label="Then",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        templates = EmailTemplate.objects.order_by("name")
        senders = SenderIdentity.objects.order_by("name")
        for index, label in enumerate(VARIANT_LABELS[:MAX_VARIANTS]):
            optional = index >= 2
            self.fields[f"use_{label}"] = forms.BooleanField(
                required=False,
                initial=not optional,
                label=f"Include variant {label}",
                disabled=not optional,
            )
            self.fields[f"subject_{label}"] = forms.CharField(
                max_length=300,
                required=False,
                label=f"Variant {label}: subject",
                help_text="Empty: the template's subject. Merge fields allowed, no PHI.",
            )
            self.fields[f"template_{label}"] = TemplateChoiceField(
                templates, required=False, label=f"Variant {label}: content (template)"
            )
            self.fields[f"sender_{label}"] = forms.ModelChoiceField(
                senders, required=False, label=f"Variant {label}: sender name and address"
            )
            self.fields[f"send_at_{label}"] = forms.DateTimeField(
                required=False,
                label=f"Variant {label}: send time",
                widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
                help_text=f"Empty: when the test starts. {org.time_zone_note()}",
            )

    def variant_rows(self) -> list[tuple[str, list[forms.BoundField]]]:
        names = ("use", "subject", "template", "sender", "send_at")
        return [
            (label, [self[f"{name}_{label}"] for name in names])
            for label in VARIANT_LABELS[:MAX_VARIANTS]
        ]

    def variants(self) -> list[VariantSpec]:
        data = self.cleaned_data
        specs = []
        for index, label in enumerate(VARIANT_LABELS[:MAX_VARIANTS]):
            if index >= 2 and not data.get(f"use_{label}"):
                continue
            specs.append(
                VariantSpec(
                    subject=data.get(f"subject_{label}") or "",
                    template=data.get(f"template_{label}"),
                    sender=data.get(f"sender_{label}"),
                    send_at=data.get(f"send_at_{label}"),
                )
            )
        return specs

    @classmethod
    def initial_for(cls, test: ABTest | None) -> dict[str, Any]:
        if test is None:
            return {}
        initial: dict[str, Any] = {
            "test_percent": test.test_percent,
            "metric": test.metric,
            "wait_hours": test.wait_hours,
            "min_sample": test.min_sample,
            "auto_send_winner": "1" if test.auto_send_winner else "0",
        }
        for variant in test.variants.select_related("campaign"):
            label = variant.label
            initial[f"use_{label}"] = True
            initial[f"subject_{label}"] = variant.subject
            initial[f"template_{label}"] = variant.campaign.template_id
            initial[f"sender_{label}"] = variant.campaign.sender_id
            initial[f"send_at_{label}"] = variant.send_at
        return initial


class DeliveryPlanForm(forms.Form):
    local_date = forms.DateField(
        required=False,
        label="Deliver on (each recipient's local date)",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Empty: send when the campaign starts.",
    )
    local_time = forms.TimeField(
        required=False,
        initial=dt.time(9, 0),
        label="At (each recipient's local time)",
        widget=forms.TimeInput(attrs={"type": "time"}),
        help_text="In the contact's time zone, or the organization's default zone for "
        "contacts without one.",
    )
    respect_quiet_hours = forms.BooleanField(
        required=False,
        initial=True,
        label="Respect the organization's quiet hours",
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("local_date") and not data.get("local_time"):
            self.add_error("local_time", "Give the local time to send at.")
        if not data.get("local_date"):
            data["local_time"] = None
        return data
