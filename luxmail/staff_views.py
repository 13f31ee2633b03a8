"""Staff pages: management for Admins (``luxmail.manage_staff``), the invitation link,
and break-glass requests (any staff user) and review (Admins). Thin: form → service."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from luxmail import breakglass, roles, staff
from luxmail.accounts import selectors as account_selectors
from luxmail.models import BreakGlassGrant, Invitation, User
from luxmail.staff_forms import (
    AcceptInvitationForm,
    BreakGlassForm,
    InviteForm,
    ReasonForm,
    RolesForm,
)

_MANAGE = "luxmail.manage_staff"


@never_cache  # the response may show a fresh invitation link
@login_required
@permission_required(_MANAGE, raise_exception=True)
def staff_index(request: HttpRequest) -> HttpResponse:
    form = InviteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            invitation, _ = staff.invitation_create(
                email=form.cleaned_data["email"],
                role_names=form.cleaned_data["roles"],
                actor=request.user,
                request=request,
            )
        except staff.StaffError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, f"Invitation sent to {invitation.email}.")
            return redirect("staff:index")
    users = list(staff.staff_list())
    rows = [
        {
            "user": user,
            "roles": [g.name for g in user.groups.all()],
            "second_factor": account_selectors.has_confirmed_device(user),
            "passkey": account_selectors.has_passkey(user),
        }
        for user in users
    ]
    return render(
        request,
        "staff/index.html",
        {
            "form": form,
            "rows": rows,
            "invitations": staff.invitations_open(),
            "nav": "staff",
        },
    )


@never_cache
@login_required
@permission_required(_MANAGE, raise_exception=True)
def staff_detail(request: HttpRequest, user_id: int) -> HttpResponse:
    member = get_object_or_404(User, pk=user_id)
    return render(
        request,
        "staff/detail.html",
        {
            "member": member,
            "roles_form": RolesForm(initial={"roles": roles.role_names(member)}),
            "reason_form": ReasonForm(),
            "factors": account_selectors.factor_rows(member),
            "passkey_required": account_selectors.passkey_required(member),
            "sessions": staff.staff_sessions(member, current_key=request.session.session_key),
            "grants": breakglass.grants_of(member),
            "nav": "staff",
        },
    )


def _done(request: HttpRequest, user_id: int, error: Exception | None, ok: str) -> HttpResponse:
    if error is not None:
        messages.error(request, str(error))
    else:
        messages.success(request, ok)
    return redirect("staff:detail", user_id=user_id)


@login_required
@permission_required(_MANAGE, raise_exception=True)
@require_POST
def staff_roles(request: HttpRequest, user_id: int) -> HttpResponse:
    member = get_object_or_404(User, pk=user_id)
    form = RolesForm(request.POST)
    if not form.is_valid():
        return _done(request, user_id, staff.StaffError("Choose roles from the list."), "")
    try:
        staff.staff_roles_set(
            user=member, role_names=form.cleaned_data["roles"], actor=request.user, request=request
        )
    except staff.StaffError as error:
        return _done(request, user_id, error, "")
    return _done(request, user_id, None, "Roles saved.")


def _reason_or_error(request: HttpRequest) -> tuple[str, Exception | None]:
    form = ReasonForm(request.POST)
    if not form.is_valid():
        return "", staff.StaffError(
            f"Give a reason of {staff.REASON_MIN} to {staff.REASON_MAX} characters."
        )
    return form.cleaned_data["reason"], None


@login_required
@permission_required(_MANAGE, raise_exception=True)
@require_POST
def staff_active(request: HttpRequest, user_id: int) -> HttpResponse:
    member = get_object_or_404(User, pk=user_id)
    reason, error = _reason_or_error(request)
    active = request.POST.get("active") == "1"
    if error is None:
        try:
            staff.staff_set_active(
                user=member, active=active, reason=reason, actor=request.user, request=request
            )
        except staff.StaffError as failed:
            error = failed
    return _done(
        request, user_id, error, "Account reactivated." if active else "Account deactivated."
    )


@login_required
@permission_required(_MANAGE, raise_exception=True)
@require_POST
def staff_mfa_reset(request: HttpRequest, user_id: int) -> HttpResponse:
    member = get_object_or_404(User, pk=user_id)
    reason, error = _reason_or_error(request)
    if error is None:
        try:
            staff.mfa_reset(user=member, reason=reason, actor=request.user, request=request)
        except staff.StaffError as failed:
            error = failed
    return _done(
        request, user_id, error, "Second factors removed: the user enrols again at next sign-in."
    )


@login_required
@permission_required(_MANAGE, raise_exception=True)
@require_POST
def staff_session_end(request: HttpRequest, user_id: int) -> HttpResponse:
    member = get_object_or_404(User, pk=user_id)
    raw = request.POST.get("session", "all")
    session_id = int(raw) if raw.isdigit() and len(raw) < 12 else None
    ended = staff.staff_session_end(
        user=member, session_id=session_id, actor=request.user, request=request
    )
    return _done(request, user_id, None, f"{ended} session(s) ended.")


@login_required
@permission_required(_MANAGE, raise_exception=True)
@require_POST
def invitation_revoke(request: HttpRequest, invitation_uuid: str) -> HttpResponse:
    invitation = get_object_or_404(Invitation, uuid=invitation_uuid)
    staff.invitation_revoke(invitation=invitation, actor=request.user, request=request)
    messages.success(request, "Invitation revoked.")
    return redirect("staff:index")


@never_cache
def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    """The link from the invitation mail: choose a username and password (public)."""
    try:
        invitation = staff.invitation_from_token(token)
    except staff.InvitationInvalid as error:
        return render(request, "staff/invitation_invalid.html", {"error": str(error)}, status=404)
    form = AcceptInvitationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            staff.invitation_accept(
                token=token,
                username=form.cleaned_data["username"],
                password=form.cleaned_data["password1"],
                first_name=form.cleaned_data["first_name"],
                last_name=form.cleaned_data["last_name"],
                request=request,
            )
        except staff.InvitationInvalid as error:
            return render(
                request, "staff/invitation_invalid.html", {"error": str(error)}, status=404
            )
        except staff.StaffError as error:
            form.add_error(None, str(error))
        else:
            messages.success(
                request,
                "Your account is ready. Sign in, then set up your authenticator app.",
            )
            return redirect("accounts:login")
    return render(request, "staff/invitation_accept.html", {"form": form, "invitation": invitation})


# --- break-glass ---------------------------------------------------------------------------


@never_cache
@login_required
@permission_required("luxmail.use_app", raise_exception=True)
def break_glass_request(request: HttpRequest) -> HttpResponse:
    user = request.user
    form = BreakGlassForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            grant = breakglass.break_glass_request(
                user=user,
                justification=form.cleaned_data["justification"],
                minutes=form.cleaned_data["minutes"],
                request=request,
            )
        except breakglass.BreakGlassError as error:
            form.add_error(None, str(error))
        else:
            messages.warning(
                request,
                f"Break-glass PHI access is open until {grant.expires_at:%H:%M %Z}. "
                "The Admins have been told; every PHI access is flagged in the audit trail.",
            )
            return redirect("staff:break_glass_request")
    return render(
        request,
        "staff/break_glass_request.html",
        {
            "form": form,
            "by_role": breakglass.has_phi_by_role(user),
            "grants": breakglass.grants_of(user),
            "open_id": breakglass.active_grant_id(user.pk),
        },
    )


@never_cache
@login_required
@permission_required(_MANAGE, raise_exception=True)
def break_glass_review(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "staff/break_glass.html",
        {
            "open_grants": breakglass.open_grants(),
            "recent": breakglass.grants_recent(),
            "nav": "staff",
        },
    )


@login_required
@permission_required(_MANAGE, raise_exception=True)
@require_POST
def break_glass_decide(request: HttpRequest, grant_uuid: str) -> HttpResponse:
    grant = get_object_or_404(BreakGlassGrant, uuid=grant_uuid)
    if request.POST.get("action") == "revoke":
        if breakglass.break_glass_revoke(grant=grant, actor=request.user, request=request):
            messages.success(request, "Break-glass access revoked.")
        else:
            messages.info(request, "That access had already ended.")
    else:
        breakglass.break_glass_acknowledge(grant=grant, actor=request.user, request=request)
        messages.success(request, "Acknowledged.")
    return redirect("staff:break_glass")
