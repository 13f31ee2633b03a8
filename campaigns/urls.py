from django.urls import include, path

from campaigns import approval_views, editor_views, feedback_views, views

app_name = "campaigns"

urlpatterns = [
    path("", views.index, name="index"),
    path("journeys/", include("campaigns.journeys.urls")),
    path("new/", views.campaign_new, name="new"),
    path("audience-count/", views.audience_count, name="audience_count"),
    path("deliverability/", feedback_views.deliverability, name="deliverability"),
    path("deliverability/policy/", feedback_views.feedback_policy, name="feedback_policy"),
    path(
        "deliverability/unparsed/reprocess/",
        feedback_views.unparsed_reprocess_pending,
        name="unparsed_reprocess_pending",
    ),
    path(
        "deliverability/unparsed/<int:pk>/reprocess/",
        feedback_views.unparsed_reprocess,
        name="unparsed_reprocess",
    ),
    path("<int:pk>/", views.campaign_detail, name="detail"),
    path("<int:pk>/edit/", views.campaign_edit, name="edit"),
    path("<int:pk>/review/", views.campaign_review, name="review"),
    path("<int:pk>/schedule/", views.campaign_schedule, name="schedule"),
    path("<int:pk>/test-send/", views.campaign_test_send, name="test_send"),
    path("<int:pk>/progress/", views.campaign_progress, name="progress"),
    path("<int:pk>/evidence-pack/", views.campaign_evidence_pack, name="evidence_pack"),
    path("<int:pk>/delivery.csv", views.campaign_delivery_csv, name="delivery_csv"),
    path("messages/<int:pk>/", views.message_detail, name="message_detail"),
    path("<int:pk>/approval/", approval_views.approval, name="approval"),
    path("<int:pk>/approval/request/", approval_views.approval_request, name="approval_request"),
    path("<int:pk>/approval/decide/", approval_views.approval_decide, name="approval_decide"),
    path("<int:pk>/<str:action>/", views.campaign_action, name="action"),
    path("messages/<int:pk>/resend/", views.message_resend, name="message_resend"),
    path("templates/", views.template_list, name="templates"),
    path("templates/new/", views.template_new, name="template_new"),
    path("templates/preview/", views.template_preview, name="template_preview"),
    path("templates/library/", editor_views.template_library, name="template_library"),
    path("templates/visual/", editor_views.template_visual_new, name="template_visual_new"),
    path(
        "templates/<int:pk>/visual/",
        editor_views.template_visual_edit,
        name="template_visual_edit",
    ),
    path("templates/<int:pk>/", views.template_edit, name="template_edit"),
    path("senders/", views.sender_list, name="senders"),
    path("signing-keys/", views.signing_keys, name="signing_keys"),
    path("senders/new/", views.sender_new, name="sender_new"),
    path("senders/<int:pk>/", views.sender_detail, name="sender_detail"),
    path(
        "senders/<int:pk>/allow-without-dkim/",
        views.sender_allow_without_dkim,
        name="sender_allow_without_dkim",
    ),
]
