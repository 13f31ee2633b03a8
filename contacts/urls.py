from django.urls import path

from contacts.views import browse, bulk_download, exports, fields, imports, lists, people, segments

app_name = "contacts"

urlpatterns = [
    path("", browse.contact_list, name="index"),
    path("bulk/", browse.bulk_start, name="bulk"),
    path("bulk/<uuid:job_uuid>/", browse.bulk_job, name="bulk_job"),
    path("bulk/<uuid:job_uuid>/download/", bulk_download.bulk_download, name="bulk_download"),
    path("tags/", browse.tag_index, name="tags"),
    path("tags/<int:tag_id>/delete/", browse.tag_delete, name="tag_delete"),
    path("views/save/", browse.view_save, name="view_save"),
    path("views/<uuid:view_uuid>/delete/", browse.view_delete, name="view_delete"),
    path("icd10/", browse.icd10_search, name="icd10"),
    path("new/", people.contact_create, name="create"),
    path("<uuid:contact_uuid>/", people.contact_detail, name="detail"),
    path("<uuid:contact_uuid>/phi/", people.contact_show_phi, name="show_phi"),
    path("<uuid:contact_uuid>/edit/", people.contact_edit, name="edit"),
    path("<uuid:contact_uuid>/delete/", people.contact_delete, name="delete"),
    path("<uuid:contact_uuid>/consent/grant/", people.consent_grant, name="consent_grant"),
    path("<uuid:contact_uuid>/consent/revoke/", people.consent_revoke, name="consent_revoke"),
    path("<uuid:contact_uuid>/suppress/", people.suppression_add, name="suppress"),
    path(
        "<uuid:contact_uuid>/suppress/<int:suppression_id>/remove/",
        people.suppression_remove,
        name="unsuppress",
    ),
    path("<uuid:contact_uuid>/lists/add/", people.membership_add, name="membership_add"),
    path(
        "<uuid:contact_uuid>/lists/<int:list_id>/remove/",
        people.membership_remove,
        name="membership_remove",
    ),
    path("lists/", lists.list_index, name="lists"),
    path("lists/<int:list_id>/", lists.list_detail, name="list_detail"),
    path("lists/<int:list_id>/rename/", lists.list_rename, name="list_rename"),
    path("lists/<int:list_id>/delete/", lists.list_delete, name="list_delete"),
    path("lists/<int:list_id>/members/add/", lists.list_member_add, name="list_member_add"),
    path(
        "lists/<int:list_id>/members/remove/", lists.list_members_remove, name="list_members_remove"
    ),
    path("fields/", fields.field_index, name="fields"),
    path("fields/<int:field_id>/", fields.field_edit, name="field_edit"),
    path("fields/<int:field_id>/delete/", fields.field_delete, name="field_delete"),
    path("segments/", segments.segment_index, name="segments"),
    path("segments/new/", segments.segment_builder, name="segment_new"),
    path("segments/preview/", segments.segment_preview, name="segment_preview"),
    path("segments/<int:segment_id>/", segments.segment_builder, name="segment_edit"),
    path("segments/<int:segment_id>/delete/", segments.segment_delete, name="segment_delete"),
    path("import/", imports.import_index, name="import"),
    path("import/<uuid:job_uuid>/", imports.import_job, name="import_job"),
    path("import/<uuid:job_uuid>/status/", imports.import_status, name="import_status"),
    path("import/<uuid:job_uuid>/confirm/", imports.import_confirm, name="import_confirm"),
    path("import/<uuid:job_uuid>/cancel/", imports.import_cancel, name="import_cancel"),
    path("export/", exports.export, name="export"),
]
