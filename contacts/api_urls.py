"""Versioned API routes of the contacts app (mounted under /api/v1/)."""

from django.urls import path

from contacts import api, ledger_api, search_api
from contacts.keys import api as keys_api

urlpatterns = [
    path("contacts/", api.ContactListCreateApi.as_view(), name="api-contacts"),
    path("contacts/search/", search_api.ContactSearchApi.as_view(), name="api-contact-search"),
    path("contacts/bulk/", search_api.BulkStartApi.as_view(), name="api-contact-bulk"),
    path(
        "contacts/bulk/<uuid:job_uuid>/",
        search_api.BulkJobApi.as_view(),
        name="api-contact-bulk-job",
    ),
    path("tags/", search_api.TagListCreateApi.as_view(), name="api-tags"),
    path("tags/<int:pk>/", search_api.TagDetailApi.as_view(), name="api-tag"),
    path("contacts/upsert/", api.ContactUpsertApi.as_view(), name="api-contact-upsert"),
    path("contacts/<int:pk>/", api.ContactDetailApi.as_view(), name="api-contact"),
    path("contacts/<int:pk>/keys/", keys_api.ContactKeysApi.as_view(), name="api-contact-keys"),
    path(
        "contacts/<int:pk>/keys/<uuid:key_uuid>/",
        keys_api.ContactKeyApi.as_view(),
        name="api-contact-key",
    ),
    path(
        "contacts/<int:pk>/consents/",
        api.ConsentListGrantApi.as_view(),
        name="api-contact-consents",
    ),
    path(
        "contacts/<int:pk>/consent-ledger/",
        ledger_api.ConsentLedgerApi.as_view(),
        name="api-contact-consent-ledger",
    ),
    path(
        "contacts/<int:pk>/consents/revoke/",
        api.ConsentRevokeApi.as_view(),
        name="api-contact-consent-revoke",
    ),
    path("suppressions/", api.SuppressionListAddApi.as_view(), name="api-suppressions"),
    path(
        "suppressions/<int:pk>/remove/",
        api.SuppressionRemoveApi.as_view(),
        name="api-suppression-remove",
    ),
    path("lists/", api.ContactListListCreateApi.as_view(), name="api-lists"),
    path("lists/<int:pk>/", api.ContactListDetailApi.as_view(), name="api-list"),
    path("lists/<int:pk>/members/", api.ListMembersApi.as_view(), name="api-list-members"),
    path("segments/", api.SegmentListCreateApi.as_view(), name="api-segments"),
    path("segments/fields/", api.SegmentFieldsApi.as_view(), name="api-segment-fields"),
    path("segments/<int:pk>/", api.SegmentDetailApi.as_view(), name="api-segment"),
    path("segments/<int:pk>/count", api.SegmentCountApi.as_view(), name="api-segment-count"),
]
