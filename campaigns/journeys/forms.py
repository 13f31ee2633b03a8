"""Forms of the journey builder: they turn fields into the definition's JSON shapes;
``campaigns/journeys/definition.py`` validates (its messages are shown on the form)."""

from __future__ import annotations

import json
from typing import Any

from django import forms

from campaigns.journeys import definition as d
from campaigns.models import EmailTemplate, SenderIdentity
from contacts.models import ContactList, Segment
from luxmail.models import SecurePolicy

TIME = forms.TimeInput(attrs={"type": "time"}, format="%H:%M")


def _choices(form: forms.Form, name: str) -> forms.ChoiceField:
    field = form.fields[name]
    assert isinstance(field, forms.ChoiceField)
    return field


class JourneyForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), help_text="For your team."
    )


def _date_field_choices() -> list[tuple[str, str]]:
    return [
        (name, kind.label + (" (PHI)" if kind.phi else ""))
        for name, kind in sorted(d.date_fields().items(), key=lambda item: item[1].label)
    ]


class SettingsForm(forms.Form):
    """Trigger, re-entry rule and consent of the draft."""

    trigger_kind = forms.ChoiceField(
        label="Contacts enter when",
        choices=list(d.TRIGGER_KINDS.items()),
        widget=forms.Select(attrs={"data-journey-mode": "trigger"}),
    )
    events = forms.CharField(
        required=False,
        label="Event names",
        help_text="Comma-separated, e.g. missed_appointment, unfilled_prescription. Empty: any.",
    )
    segment = forms.ModelChoiceField(queryset=Segment.objects.order_by("name"), required=False)
    contact_list = forms.ModelChoiceField(
        queryset=ContactList.objects.order_by("name"), required=False, label="List"
    )
    include_existing = forms.BooleanField(
        required=False, label="Also enroll who is already in it when the journey starts"
    )
    date_field = forms.ChoiceField(required=False, label="Date field")
    offset_days = forms.IntegerField(
        required=False, min_value=0, max_value=d.MAX_OFFSET_DAYS, label="Days", initial=7
    )
    offset_direction = forms.ChoiceField(
        required=False,
        label="Before or after",
        choices=[("before", "before the date"), ("after", "after the date"), ("on", "on the date")],
    )
    yearly = forms.BooleanField(required=False, label="Every year (e.g. a yearly screening)")
    reentry_mode = forms.ChoiceField(
        label="Re-entry",
        choices=[("once", "Once per contact"), ("after_days", "Again after a number of days")],
    )
    reentry_days = forms.IntegerField(
        required=False, min_value=1, max_value=d.MAX_REENTRY_DAYS, label="Days before re-entry"
    )
    consent = forms.ChoiceField(choices=list(d.CONSENTS.items()), label="Consent required to send")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _choices(self, "date_field").choices = [("", "Choose…"), *_date_field_choices()]

    @classmethod
    def initial_from(cls, definition: dict[str, Any]) -> dict[str, Any]:
        trigger = definition.get("trigger") or {}
        reentry = definition.get("reentry") or {}
        offset = int(trigger.get("offset_days") or 0)
        return {
            "trigger_kind": trigger.get("kind", "manual"),
            "events": ", ".join(trigger.get("events") or []),
            "segment": trigger.get("segment"),
            "contact_list": trigger.get("list"),
            "include_existing": bool(trigger.get("include_existing")),
            "date_field": trigger.get("field", ""),
            "offset_days": abs(offset) if trigger.get("kind") == "date" else 7,
            "offset_direction": "before" if offset < 0 else "after" if offset > 0 else "on",
            "yearly": bool(trigger.get("yearly")),
            "reentry_mode": reentry.get("mode", "once"),
            "reentry_days": reentry.get("days"),
            "consent": definition.get("consent", "marketing"),
        }

    def trigger(self) -> dict[str, Any]:
        data = self.cleaned_data
        kind = data["trigger_kind"]
        if kind == "event":
            return {"kind": kind, "events": data.get("events") or ""}
        if kind == "segment":
            segment = data.get("segment")
            return {
                "kind": kind,
                "segment": segment.pk if segment else None,
                "include_existing": data.get("include_existing"),
            }
        if kind == "list":
            contact_list = data.get("contact_list")
            return {
                "kind": kind,
                "list": contact_list.pk if contact_list else None,
                "include_existing": data.get("include_existing"),
            }
        if kind == "date":
            days = int(data.get("offset_days") or 0)
            direction = data.get("offset_direction")
            signed = -days if direction == "before" else days if direction == "after" else 0
            return {
                "kind": kind,
                "field": data.get("date_field") or "",
                "offset_days": signed,
                "yearly": data.get("yearly"),
            }
        return {"kind": "manual"}

    def reentry(self) -> dict[str, Any]:
        if self.cleaned_data["reentry_mode"] == "after_days":
            return {"mode": "after_days", "days": self.cleaned_data.get("reentry_days")}
        return {"mode": "once"}


class StepForm(forms.Form):
    """Fields shared by every step; subclasses add the kind's configuration."""

    name = forms.CharField(max_length=120, required=False, label="Step name")
    next_key = forms.ChoiceField(required=False, label="Then continue with")

    kind = ""

    def __init__(self, *args: Any, steps: list[tuple[str, str]], own_key: str, **kwargs: Any):
        super().__init__(*args, **kwargs)
        choices = [("", "— nothing yet (add a step or an exit) —")] + [
            (key, label) for key, label in steps if key != own_key
        ]
        _choices(self, "next_key").choices = choices
        if "no_key" in self.fields:
            _choices(self, "no_key").choices = choices

    def config(self) -> dict[str, Any]:
        return {}

    @classmethod
    def initial_from(cls, step: Any) -> dict[str, Any]:
        return {"name": step.name, "next_key": step.next_key, "no_key": step.no_key}


class SendStepForm(StepForm):
    kind = d.SEND
    template = forms.ModelChoiceField(
        queryset=EmailTemplate.objects.order_by("name"), required=False
    )
    sender = forms.ModelChoiceField(
        queryset=SenderIdentity.objects.order_by("name"), required=False, label="Sender identity"
    )
    secure_policy = forms.ChoiceField(
        required=False,
        label="Secure delivery",
        choices=[("", "The organization's default"), *SecurePolicy.choices],
    )
    track_opens = forms.BooleanField(required=False, initial=True)
    track_clicks = forms.BooleanField(required=False, initial=True)
    encrypted_subject_visible = forms.BooleanField(
        required=False, label="Show the real subject outside encrypted mail (PHI templates)"
    )

    def config(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "template": data["template"].pk if data.get("template") else None,
            "sender": data["sender"].pk if data.get("sender") else None,
            "secure_policy": data.get("secure_policy") or "",
            "track_opens": data.get("track_opens"),
            "track_clicks": data.get("track_clicks"),
            "encrypted_subject_visible": data.get("encrypted_subject_visible"),
        }

    @classmethod
    def initial_from(cls, step: Any) -> dict[str, Any]:
        return {**super().initial_from(step), **step.config}


WEEKDAY_CHOICES = [(str(i), name) for i, name in enumerate(d.WEEKDAYS)]


class WaitStepForm(StepForm):
    kind = d.WAIT
    mode = forms.ChoiceField(
        label="Wait",
        widget=forms.RadioSelect(attrs={"data-journey-mode": "wait"}),
        choices=[
            ("duration", "For a time"),
            ("until_date", "Until a date field, minus or plus some days"),
            ("window", "Until a time window in the contact's time zone"),
        ],
    )
    days = forms.IntegerField(required=False, min_value=0, max_value=d.MAX_WAIT_DAYS)
    hours = forms.IntegerField(required=False, min_value=0, max_value=23)
    minutes = forms.IntegerField(required=False, min_value=0, max_value=59)
    field = forms.ChoiceField(required=False, label="Date field")
    offset_days = forms.IntegerField(
        required=False, min_value=0, max_value=d.MAX_OFFSET_DAYS, label="Days"
    )
    offset_direction = forms.ChoiceField(
        required=False,
        label="Before or after",
        choices=[("before", "before the date"), ("after", "after the date"), ("on", "on the date")],
    )
    at = forms.TimeField(required=False, widget=TIME, label="At (contact's local time)")
    if_missing = forms.ChoiceField(
        required=False,
        label="When the contact has no such date",
        choices=[("exit", "Leave the journey"), ("continue", "Continue at once")],
    )
    window_days = forms.MultipleChoiceField(
        required=False,
        label="Weekdays",
        choices=WEEKDAY_CHOICES,
        widget=forms.CheckboxSelectMultiple,
    )
    start = forms.TimeField(required=False, widget=TIME, label="From")
    end = forms.TimeField(required=False, widget=TIME, label="Until")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _choices(self, "field").choices = [("", "Choose…"), *_date_field_choices()]

    def config(self) -> dict[str, Any]:
        data = self.cleaned_data
        mode = data["mode"]
        if mode == "duration":
            return {
                "mode": mode,
                "days": data.get("days") or 0,
                "hours": data.get("hours") or 0,
                "minutes": data.get("minutes") or 0,
            }
        if mode == "until_date":
            days = int(data.get("offset_days") or 0)
            direction = data.get("offset_direction")
            return {
                "mode": mode,
                "field": data.get("field") or "",
                "offset_days": -days
                if direction == "before"
                else days
                if direction == "after"
                else 0,
                "at": data["at"].strftime("%H:%M") if data.get("at") else "09:00",
                "if_missing": data.get("if_missing") or "exit",
            }
        return {
            "mode": mode,
            "days": [int(x) for x in data.get("window_days") or []],
            "start": data["start"].strftime("%H:%M") if data.get("start") else "09:00",
            "end": data["end"].strftime("%H:%M") if data.get("end") else "17:00",
        }

    @classmethod
    def initial_from(cls, step: Any) -> dict[str, Any]:
        config = step.config
        initial = {**super().initial_from(step), "mode": config.get("mode", "duration")}
        if config.get("mode") == "duration":
            initial.update({k: config.get(k) for k in ("days", "hours", "minutes")})
        elif config.get("mode") == "until_date":
            offset = int(config.get("offset_days") or 0)
            initial.update(
                {
                    "field": config.get("field"),
                    "offset_days": abs(offset),
                    "offset_direction": "before" if offset < 0 else "after" if offset > 0 else "on",
                    "at": config.get("at"),
                    "if_missing": config.get("if_missing"),
                }
            )
        elif config.get("mode") == "window":
            initial.update(
                {
                    "window_days": [str(x) for x in config.get("days") or []],
                    "start": config.get("start"),
                    "end": config.get("end"),
                }
            )
        return initial


class BranchStepForm(StepForm):
    kind = d.BRANCH
    mode = forms.ChoiceField(
        label="Decide on",
        widget=forms.RadioSelect(attrs={"data-journey-mode": "branch"}),
        choices=[
            ("segment", "A condition on the contact (any segment rule)"),
            ("engagement", "Engagement with an earlier email (human opens and clicks only)"),
        ],
    )
    rules = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}), label="Rules as JSON"
    )
    event = forms.ChoiceField(
        required=False,
        choices=[(k, f"The contact {v} the email") for k, v in d.ENGAGEMENT.items()],
        label="Condition",
    )
    step = forms.ChoiceField(required=False, label="Email (send step)")
    within_days = forms.IntegerField(
        required=False, min_value=1, max_value=d.MAX_ENGAGEMENT_DAYS, label="Within days of sending"
    )
    no_key = forms.ChoiceField(required=False, label="Otherwise (no), continue with")

    def __init__(self, *args: Any, send_steps: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["next_key"].label = "When yes, continue with"
        _choices(self, "step").choices = [("", "Choose…"), *send_steps]

    def clean_rules(self) -> Any:
        text = self.cleaned_data.get("rules") or ""
        if not text.strip():
            return None
        try:
            value = json.loads(text)
        except ValueError:
            raise forms.ValidationError("The rules are not valid JSON.") from None
        return None if value in ({"all": []}, {"any": []}, {}) else value

    def config(self) -> dict[str, Any]:
        data = self.cleaned_data
        if data["mode"] == "segment":
            return {"mode": "segment", "rules": data.get("rules")}
        return {
            "mode": "engagement",
            "event": data.get("event") or "opened",
            "step": data.get("step") or "",
            "within_days": data.get("within_days") or 1,
        }

    @classmethod
    def initial_from(cls, step: Any) -> dict[str, Any]:
        config = step.config
        return {
            **super().initial_from(step),
            "mode": config.get("mode", "segment"),
            "rules": json.dumps(config.get("rules")) if config.get("rules") else "",
            "event": config.get("event", "opened"),
            "step": config.get("step", ""),
            "within_days": config.get("within_days", 2),
        }


class UpdateStepForm(StepForm):
    kind = d.UPDATE
    action = forms.ChoiceField(
        widget=forms.RadioSelect(attrs={"data-journey-mode": "update"}),
        choices=[
            ("set_field", "Set a field"),
            ("add_to_list", "Add to a list"),
            ("remove_from_list", "Remove from a list"),
        ],
    )
    field = forms.ChoiceField(required=False)
    value = forms.CharField(required=False, max_length=200, help_text="Empty clears the field.")
    contact_list = forms.ModelChoiceField(
        queryset=ContactList.objects.order_by("name"), required=False, label="List"
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _choices(self, "field").choices = [("", "Choose…")] + [
            (name, label + (" (PHI)" if phi else ""))
            for name, (label, phi) in d.settable_fields().items()
        ]

    def config(self) -> dict[str, Any]:
        data = self.cleaned_data
        if data["action"] == "set_field":
            return {
                "action": "set_field",
                "field": data.get("field") or "",
                "value": data.get("value"),
            }
        contact_list = data.get("contact_list")
        return {"action": data["action"], "list": contact_list.pk if contact_list else None}

    @classmethod
    def initial_from(cls, step: Any) -> dict[str, Any]:
        config = step.config
        return {
            **super().initial_from(step),
            "action": config.get("action", "set_field"),
            "field": config.get("field", ""),
            "value": config.get("value") or "",
            "contact_list": config.get("list"),
        }


class ExitStepForm(StepForm):
    kind = d.EXIT

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        del self.fields["next_key"]


STEP_FORMS: dict[str, type[StepForm]] = {
    d.SEND: SendStepForm,
    d.WAIT: WaitStepForm,
    d.BRANCH: BranchStepForm,
    d.UPDATE: UpdateStepForm,
    d.EXIT: ExitStepForm,
}


class GoalForm(forms.Form):
    rules = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Rules as JSON",
        help_text="Empty: no goal. A contact matching these rules leaves the journey early.",
    )

    def clean_rules(self) -> Any:
        text = self.cleaned_data.get("rules") or ""
        if not text.strip():
            return None
        try:
            value = json.loads(text)
        except ValueError:
            raise forms.ValidationError("The rules are not valid JSON.") from None
        # The builder's empty tree means "no goal".
        if value in ({"all": []}, {"any": []}, None, {}):
            return None
        return value


class EnrollForm(forms.Form):
    reference = forms.CharField(
        max_length=254,
        label="Contact",
        help_text="E-mail address, external (EHR) id or contact UUID; never put in a URL.",
    )
