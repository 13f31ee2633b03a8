"""The Django admin for the core app, behind a verified second factor (``OTPAdminSite``).

* Every add, change and delete made here is written to the audit chain
  (``admin.add`` / ``admin.change`` / ``admin.delete``: model, object id and the names
  of the changed fields, never values); role changes also as ``user.roles_change``.
* Secrets never render: no password hash, API key hash, TOTP key or backup code.
* The audit log is read-only for everybody, superusers included.
* Role groups are defined in code (``luxmail/roles.py``) and shown read-only.
* Organization settings are one row, changed only through ``org.org_settings_update``.
"""

from __future__ import annotations

from typing import Any

from axes.admin import AccessAttemptAdmin
from axes.models import AccessAttempt
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django_otp.plugins.otp_static.admin import StaticDeviceAdmin
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.admin import TOTPDeviceAdmin
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.admin import WebAuthnCredentialAdmin
from django_otp_webauthn.models import WebAuthnCredential

from luxmail import audit, org, roles
from luxmail.accounts import selectors as account_selectors
from luxmail.accounts import services as account_services
from luxmail.admin_site import ReadOnlyAdmin
from luxmail.api import services as api_services
from luxmail.models import ApiKey, AuditEvent, LegalHold, Notification, OrgSettings, User
from luxmail.templatetags.audit_details import detail_lines


def _unregister(model: Any) -> None:
    if admin.site.is_registered(model):
        admin.site.unregister(model)


class AuditedAdminMixin:
    """Writes each admin add/change/delete to the audit chain (field names, no values)."""

    def _audit(self, request: HttpRequest, action: str, obj: Any, details: dict[str, Any]) -> None:
        audit.record(
            action,
            actor=request.user,
            request=request,
            target_type=obj._meta.label_lower,
            target_id=str(getattr(obj, "uuid", None) or obj.pk),
            details={"via": "admin", **details},
        )

    def log_addition(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        self._audit(request, "admin.add", obj, {})
        return super().log_addition(request, obj, message)  # type: ignore[misc]

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        fields: list[str] = []
        for entry in message if isinstance(message, list) else []:
            fields.extend(entry.get("changed", {}).get("fields", []))
        self._audit(request, "admin.change", obj, {"fields": fields})
        return super().log_change(request, obj, message)  # type: ignore[misc]

    def log_deletions(self, request: HttpRequest, queryset: Any) -> Any:
        for obj in queryset:
            self._audit(request, "admin.delete", obj, {})
        return super().log_deletions(request, queryset)  # type: ignore[misc]


# --- staff users ---------------------------------------------------------------------


@admin.register(User)
class UserAdmin(AuditedAdminMixin, DjangoUserAdmin):
    list_display = [
        "username",
        "email",
        "full_name",
        "role_list",
        "second_factors",
        "is_active",
        "last_login",
    ]
    list_filter = ["groups", "is_active", "is_staff"]
    search_fields = ["username", "email", "first_name", "last_name"]
    ordering = ["username"]
    # No "password" field: Django would render the hash's algorithm, salt and a
    # masked hash; Admins set a new password through the dedicated form instead.
    fieldsets = (
        (None, {"fields": ("username", "password_status")}),
        ("Person", {"fields": ("first_name", "last_name", "email")}),
        ("Access", {"fields": ("is_active", "is_staff", "groups", "is_superuser")}),
        ("Second factors", {"fields": ("second_factors",)}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("username", "email", "usable_password", "password1", "password2"),
            },
        ),
        ("Access", {"fields": ("is_staff", "groups")}),
    )
    readonly_fields = [
        "password_status",
        "second_factors",
        "is_superuser",
        "last_login",
        "date_joined",
    ]
    filter_horizontal = ["groups"]
    actions = ["unlock_sign_in", "reset_second_factors"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        return (
            super()
            .get_queryset(request)
            .prefetch_related("groups")
            .annotate(
                totp_count=Count("totpdevice", filter=Q(totpdevice__confirmed=True), distinct=True),
                passkey_count=Count(
                    "webauthncredential",
                    filter=Q(webauthncredential__confirmed=True),
                    distinct=True,
                ),
                backup_codes=Count("staticdevice__token_set", distinct=True),
            )
        )

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Staff accounts are deactivated, not deleted: the audit trail names them.
        return False

    @admin.display(description="Name")
    def full_name(self, obj: User) -> str:
        return obj.get_full_name()

    @admin.display(description="Roles")
    def role_list(self, obj: User) -> str:
        return ", ".join(sorted(g.name for g in obj.groups.all())) or "—"

    @admin.display(description="Second factors")
    def second_factors(self, obj: User) -> str:
        totp = getattr(obj, "totp_count", None)
        if totp is None:  # the change form's object comes without the annotations
            totp = TOTPDevice.objects.filter(user=obj, confirmed=True).count()
            passkeys = WebAuthnCredential.objects.filter(user=obj, confirmed=True).count()
            codes = sum(d.token_set.count() for d in StaticDevice.objects.filter(user=obj))
        else:
            passkeys, codes = obj.passkey_count, obj.backup_codes  # type: ignore[attr-defined]
        return f"{totp} app(s), {passkeys} passkey(s), {codes} backup code(s)"

    @admin.display(description="Password")
    def password_status(self, obj: User) -> str:
        if not obj.pk:
            return "—"
        state = "set" if obj.has_usable_password() else "not set (cannot sign in)"
        # Django's UserAdmin names this URL after auth.User even for a custom user model.
        url = reverse("admin:auth_user_password_change", args=[obj.pk])
        return format_html('{} · <a href="{}">Set a new password</a>', state, url)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        user = form.instance
        before = roles.role_names(user) if change else []
        super().save_related(request, form, formsets, change)
        after = roles.role_names(user)
        if before != after:
            audit.record(
                "user.roles_change",
                actor=request.user,
                request=request,
                target=user,
                details={"before": before, "after": after, "via": "admin"},
            )

    @admin.action(description="Unlock sign-in (clear failed attempts)")
    def unlock_sign_in(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        cleared = 0
        for user in queryset:
            cleared += account_services.account_unlock(
                user=user, actor=request.user, request=request
            )
        self.message_user(
            request,
            f"Sign-in unlocked for {queryset.count()} account(s) ({cleared} lockout record(s) "
            "cleared).",
            messages.SUCCESS,
        )

    @admin.action(description="Remove all second factors (they enrol again at next sign-in)")
    def reset_second_factors(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        removed = 0
        for user in queryset:
            for device in account_selectors.factors(user):
                account_services.device_remove_by_admin(
                    device=device, actor=request.user, request=request
                )
                removed += 1
        self.message_user(request, f"{removed} second factor(s) removed.", messages.WARNING)


# --- second factors: view and remove only (created by their owner) ------------------


class _FactorAdminMixin:
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        account_services.device_remove_by_admin(device=obj, actor=request.user, request=request)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for device in queryset:
            account_services.device_remove_by_admin(
                device=device, actor=request.user, request=request
            )


for _model, _base in (
    (TOTPDevice, TOTPDeviceAdmin),
    (StaticDevice, StaticDeviceAdmin),
    (WebAuthnCredential, WebAuthnCredentialAdmin),
):
    _unregister(_model)
    admin.site.register(_model, type(f"Audited{_base.__name__}", (_FactorAdminMixin, _base), {}))


# --- lockouts ------------------------------------------------------------------------


_unregister(AccessAttempt)


@admin.register(AccessAttempt)
class LockoutAdmin(AccessAttemptAdmin):
    """django-axes' failed attempts; deleting them unlocks the account (audited)."""

    def delete_model(self, request: HttpRequest, obj: AccessAttempt) -> None:
        account_services.lockout_clear(
            username=obj.username or "", actor=request.user, request=request
        )

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[AccessAttempt]) -> None:
        for username in sorted({a.username or "" for a in queryset}):
            account_services.lockout_clear(username=username, actor=request.user, request=request)


# --- roles: defined in code ----------------------------------------------------------


_unregister(Group)


@admin.register(Group)
class RoleAdmin(ReadOnlyAdmin):
    """Roles are synced from ``luxmail/roles.py`` after every migrate; edits would be lost."""

    list_display = ["name", "permission_count"]
    fields = ["name", "permission_list"]
    readonly_fields = ["name", "permission_list"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Group]:
        return super().get_queryset(request).annotate(perm_count=Count("permissions"))

    @admin.display(description="Permissions")
    def permission_count(self, obj: Group) -> int:
        return int(obj.perm_count)  # type: ignore[attr-defined]

    @admin.display(description="Permissions")
    def permission_list(self, obj: Group) -> str:
        names = obj.permissions.select_related("content_type").order_by(
            "content_type__app_label", "codename"
        )
        return ", ".join(f"{p.content_type.app_label}.{p.codename}" for p in names)


# --- audit log: read-only for everybody ----------------------------------------------


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "created_at",
        "actor_label",
        "action",
        "target_type",
        "target_id",
        "phi",
        "ip",
    ]
    list_filter = ["action", "phi", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["actor_label", "^action"]
    date_hierarchy = "created_at"
    ordering = ["-id"]
    # The table grows by millions of rows; counting them on every page is not worth it.
    show_full_result_count = False
    list_per_page = 100

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # The details as "key: value" lines in place of the raw JSON.
        return ["details_text" if f.name == "details" else f.name for f in AuditEvent._meta.fields]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.get_readonly_fields(request, obj)

    @admin.display(description="Details")
    def details_text(self, obj: AuditEvent) -> str:
        return format_html_join(
            mark_safe("<br>"), "{}", ((line,) for line in detail_lines(obj.details))
        )


# --- API keys: created on the Settings page (secret shown once), revoked here ---------


_API_KEY_FIELDS = (
    "name",
    "prefix",
    "scope_list",
    "created_by",
    "created_at",
    "expires_at",
    "last_used_at",
    "revoked_at",
)


@admin.register(ApiKey)
class ApiKeyAdmin(ReadOnlyAdmin):
    list_display = [
        "name",
        "prefix",
        "scope_list",
        "created_by",
        "created_at",
        "expires_at",
        "last_used_at",
        "status",
    ]
    list_filter = ["revoked_at", "created_at"]
    search_fields = ["name", "prefix"]
    # Never "secret_hash": the hash is of no use to anybody reading this page.
    fields = _API_KEY_FIELDS
    readonly_fields = _API_KEY_FIELDS
    actions = ["revoke"]

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        extra_context = {
            **(extra_context or {}),
            "title": "API keys (create new keys on Settings → API keys)",
        }
        return super().changelist_view(request, extra_context)

    @admin.display(description="Scopes")
    def scope_list(self, obj: ApiKey) -> str:
        return ", ".join(obj.scopes)

    @admin.display(description="Status")
    def status(self, obj: ApiKey) -> str:
        if obj.revoked_at:
            return "revoked"
        if obj.expires_at and obj.expires_at <= timezone.now():
            return "expired"
        return "active"

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm("luxmail.manage_api_keys"))

    @admin.action(description="Revoke selected API keys", permissions=["revoke"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        keys = list(queryset.filter(revoked_at__isnull=True))
        for key in keys:
            api_services.api_key_revoke(key=key, actor=request.user, request=request)
        self.message_user(request, f"{len(keys)} API key(s) revoked.", messages.SUCCESS)


# --- organization settings: one row, audited updates ----------------------------------


@admin.register(OrgSettings)
class OrgSettingsAdmin(admin.ModelAdmin):
    readonly_fields = ["updated_at"]

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        # A list of one row is noise: go straight to it.
        obj = org.get_settings()
        return HttpResponseRedirect(reverse("admin:luxmail_orgsettings_change", args=[obj.pk]))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # the row is created on first use (org.get_settings)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.has_perm("luxmail.manage_settings"))

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        changes = {name: form.cleaned_data[name] for name in form.changed_data}
        updated = org.org_settings_update(actor=request.user, request=request, **changes)
        obj.updated_at = updated.updated_at


# --- legal holds: read-only; placed and released on the pages they cover (audited) ------


@admin.register(LegalHold)
class LegalHoldAdmin(ReadOnlyAdmin):
    list_display = ["id", "scope", "object_id", "created_by", "created_at", "released_at"]
    list_filter = ["scope"]


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ("id", "kind", "title", "created_at")
    list_filter = ("kind",)
