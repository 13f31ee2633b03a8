"""Admin for the contacts app: read-only views with PHI masked, blind-index search.

* No list or detail page decrypts anything: identities show as ``***@domain`` and
  encrypted columns as "encrypted". Reading PHI happens in the contacts UI, where each
  view is audited (``contact.view_phi``).
* Search never compares plaintext: an email is looked up by its blind index, a number
  by id or external id.
* Changes go through the services (and so the audit chain): contacts are deleted with
  ``contact_delete``; suppressions are lifted with ``suppression_remove``; everything
  else is edited in the contacts UI or the API.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from contacts import selectors, services
from contacts.models import (
    Consent,
    Contact,
    ContactEncryptionKey,
    ContactList,
    ContactProfile,
    ContactTokenSet,
    CustomField,
    ImportJob,
    ListMembership,
    Segment,
    Suppression,
)
from luxmail.admin_site import PlainFieldsAdmin


class ReadOnlyAdmin(PlainFieldsAdmin):
    hidden_fields = ("email_bidx",)


def _masked_identity(contact: Contact) -> str:
    return f"***@{contact.domain}"


@admin.register(Contact)
class ContactAdmin(ReadOnlyAdmin):
    list_display = ["id", "masked_email", "status", "external_id", "created_at"]
    list_filter = ["status", "created_at"]
    search_fields = ["id"]  # replaced by get_search_results: blind index, never plaintext
    search_help_text = "Exact email address (matched by blind index), contact id or external id."
    readonly_fields = ["masked_email", "encrypted_columns"]
    actions = ["delete_with_audit"]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ["masked_email", "encrypted_columns", *super().get_fields(request, obj)]

    @admin.display(description="email")
    def masked_email(self, obj: Contact) -> str:
        return _masked_identity(obj)

    @admin.display(description="encrypted")
    def encrypted_columns(self, obj: Contact) -> str:
        return "email, first name, last name, phone and the profile are encrypted"

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Contact], search_term: str
    ) -> tuple[QuerySet[Contact], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        if "@" in term:
            found = selectors.contact_by_email(email=term)
            return (queryset.filter(pk=found.pk) if found else queryset.none()), False
        if term.isdigit():
            return queryset.filter(pk=int(term)) | queryset.filter(external_id=term), False
        return queryset.filter(external_id=term), False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("contacts.delete_contact")

    def delete_model(self, request: HttpRequest, obj: Contact) -> None:
        services.contact_delete(contact=obj, actor=request.user, request=request)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Contact]) -> None:
        for contact in queryset:
            services.contact_delete(contact=contact, actor=request.user, request=request)

    @admin.action(description="Delete selected contacts (audited)")
    def delete_with_audit(self, request: HttpRequest, queryset: QuerySet[Contact]) -> None:
        count = queryset.count()
        self.delete_queryset(request, queryset)
        messages.success(request, f"Deleted {count} contacts.")

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        if not self.has_delete_permission(request):
            actions.pop("delete_with_audit", None)
        return actions


@admin.register(ContactProfile)
class ContactProfileAdmin(ReadOnlyAdmin):
    list_display = ["contact_id", "updated_at"]
    search_fields = ["contact__id"]
    readonly_fields = ["note"]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ["note", "updated_at"]

    @admin.display(description="profile")
    def note(self, obj: ContactProfile) -> str:
        return "Every attribute is encrypted; PHI is shown only in the audited contacts UI."


@admin.register(ContactTokenSet)
class ContactTokenSetAdmin(ReadOnlyAdmin):
    list_display = ["contact_id", "token_count"]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ["token_count"]

    readonly_fields = ["token_count"]

    @admin.display(description="tokens")
    def token_count(self, obj: ContactTokenSet) -> int:
        return len(obj.tokens)


@admin.register(CustomField)
class CustomFieldAdmin(ReadOnlyAdmin):
    list_display = ["key", "label", "kind", "phi", "created_at"]
    list_filter = ["kind", "phi"]
    search_fields = ["key", "label"]


@admin.register(Consent)
class ConsentAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "contact_id",
        "purpose",
        "source",
        "granted_at",
        "expires_at",
        "revoked_at",
    ]
    list_filter = ["purpose", "source", "revoked_at"]
    search_fields = ["contact__id", "evidence_ref"]


@admin.register(Suppression)
class SuppressionAdmin(ReadOnlyAdmin):
    list_display = ["id", "reason", "created_at", "created_by", "removed_at"]
    list_filter = ["reason", "removed_at"]
    search_fields = ["id"]
    search_help_text = "Exact email address (matched by blind index) or id."
    actions = ["lift"]

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Suppression], search_term: str
    ) -> tuple[QuerySet[Suppression], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        if "@" in term:
            found = selectors.suppression_for_email(email=term)
            return (queryset.filter(pk=found.pk) if found else queryset.none()), False
        return (queryset.filter(pk=int(term)) if term.isdigit() else queryset.none()), False

    @admin.action(description="Lift the selected suppressions (audited)")
    def lift(self, request: HttpRequest, queryset: QuerySet[Suppression]) -> None:
        lifted = 0
        for row in queryset.filter(removed_at__isnull=True):
            services.suppression_remove(
                suppression=row, actor=request.user, note="lifted in the admin", request=request
            )
            lifted += 1
        messages.success(request, f"Lifted {lifted} suppressions.")

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        if not request.user.has_perm("contacts.delete_suppression"):
            actions.pop("lift", None)
        return actions


class MembershipInline(admin.TabularInline):
    model = ListMembership
    fields = ["contact", "added_at", "added_by"]
    readonly_fields = ["contact", "added_at", "added_by"]
    raw_id_fields = ["contact"]
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ContactList)
class ContactListAdmin(ReadOnlyAdmin):
    list_display = ["name", "created_at", "updated_at"]
    search_fields = ["name"]
    inlines = [MembershipInline]


@admin.register(ListMembership)
class ListMembershipAdmin(ReadOnlyAdmin):
    list_display = ["id", "contact_list", "contact_id", "added_at"]
    list_filter = ["contact_list"]
    search_fields = ["contact__id"]


@admin.register(Segment)
class SegmentAdmin(ReadOnlyAdmin):
    list_display = ["name", "last_count", "last_counted_at", "updated_at"]
    search_fields = ["name"]


@admin.register(ImportJob)
class ImportJobAdmin(ReadOnlyAdmin):
    # Row errors hold row numbers, field names and reasons only (never cell values).
    list_display = [
        "id",
        "original_name",
        "status",
        "total_rows",
        "created_count",
        "updated_count",
        "unchanged_count",
        "error_count",
        "created_by",
        "created_at",
    ]
    list_filter = ["status"]


@admin.register(ContactEncryptionKey)
class ContactEncryptionKeyAdmin(ReadOnlyAdmin):
    # The material names the person: hidden (encrypted field); fingerprints are not PHI.
    list_display = ["id", "contact_id", "kind", "fingerprint", "not_after", "revoked_at"]
    list_filter = ["kind"]
    search_fields = ["fingerprint", "contact__id"]
