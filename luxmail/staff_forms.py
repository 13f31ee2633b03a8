"""Forms of the staff-management and break-glass pages (``luxmail/staff_views.py``)."""

from __future__ import annotations

from typing import Any

from django import forms

from luxmail import breakglass, conf, staff


def _role_field(**kwargs: Any) -> forms.MultipleChoiceField:
    return forms.MultipleChoiceField(
        choices=[(name, name) for name in staff.role_choices()],
        widget=forms.CheckboxSelectMultiple,
        **kwargs,
    )


class InviteForm(forms.Form):
    email = forms.EmailField(label="E-mail address", max_length=254)
    roles = _role_field(label="Roles")


class RolesForm(forms.Form):
    roles = _role_field(label="Roles", required=False)


class ReasonForm(forms.Form):
    reason = forms.CharField(
        label="Reason",
        min_length=staff.REASON_MIN,
        max_length=staff.REASON_MAX,
        help_text="Kept in the audit trail. No patient information.",
        widget=forms.TextInput(),
    )


class AcceptInvitationForm(forms.Form):
    username = forms.RegexField(
        label="Username",
        max_length=150,
        regex=r"^[\w.@+-]+\Z",
        error_messages={"invalid": "Letters, digits and @ . + - _ only."},
        widget=forms.TextInput(attrs={"autocomplete": "username", "autofocus": True}),
    )
    first_name = forms.CharField(label="First name", max_length=150, required=False)
    last_name = forms.CharField(label="Last name", max_length=150, required=False)
    password1 = forms.CharField(
        label="Password",
        strip=False,
        max_length=200,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="At least 12 characters; not a common password.",
    )
    password2 = forms.CharField(
        label="Password again",
        strip=False,
        max_length=200,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("password1") and data.get("password1") != data.get("password2"):
            self.add_error("password2", "The two passwords differ.")
        return data


class BreakGlassForm(forms.Form):
    justification = forms.CharField(
        label="Why do you need PHI access now?",
        min_length=breakglass.JUSTIFICATION_MIN,
        max_length=breakglass.JUSTIFICATION_MAX,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Admins read this at once. Describe the situation; do not write patient "
        "information here.",
    )
    minutes = forms.TypedChoiceField(label="For how long", coerce=int)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        longest = conf.break_glass_max_minutes()
        options = [m for m in (15, 30, 60, 120, 240, 480) if m <= longest] or [longest]
        self.fields["minutes"].choices = [  # type: ignore[attr-defined]  # a ChoiceField
            (m, f"{m} minutes" if m < 60 else f"{m // 60} hour{'s' if m >= 120 else ''}")
            for m in options
        ]
