"""Versioned API routes of the campaigns app (mounted under /api/v1/)."""

from django.urls import include, path

from campaigns import api, approval_api, editor_api, feedback_api
from campaigns.transactional import api as transactional_api

urlpatterns = [
    path("templates/", api.TemplateListCreateApi.as_view(), name="api-templates"),
    path("templates/<int:pk>/", api.TemplateDetailApi.as_view(), name="api-template"),
    path(
        "templates/<int:pk>/preview/",
        api.TemplatePreviewApi.as_view(),
        name="api-template-preview",
    ),
    path("editor-blocks/", editor_api.EditorBlockListCreateApi.as_view(), name="api-editor-blocks"),
    path(
        "editor-blocks/<int:pk>/",
        editor_api.EditorBlockDetailApi.as_view(),
        name="api-editor-block",
    ),
    path("senders/", api.SenderListCreateApi.as_view(), name="api-senders"),
    path("senders/<int:pk>/", api.SenderDetailApi.as_view(), name="api-sender"),
    path(
        "senders/<int:pk>/allow-without-dkim/",
        api.SenderAllowWithoutDkimApi.as_view(),
        name="api-sender-allow-without-dkim",
    ),
    path("campaigns/", api.CampaignListCreateApi.as_view(), name="api-campaigns"),
    path("campaigns/<int:pk>/", api.CampaignDetailApi.as_view(), name="api-campaign"),
    path("campaigns/<int:pk>/status/", api.CampaignStatusApi.as_view(), name="api-campaign-status"),
    path(
        "campaigns/<int:pk>/schedule/",
        api.CampaignScheduleApi.as_view(),
        name="api-campaign-schedule",
    ),
    path(
        "campaigns/<int:pk>/approval/",
        approval_api.CampaignApprovalApi.as_view(),
        name="api-campaign-approval",
    ),
    path(
        "campaigns/<int:pk>/approval/decision/",
        approval_api.CampaignApprovalDecisionApi.as_view(),
        name="api-campaign-approval-decision",
    ),
    path("campaigns/<int:pk>/pause/", api.CampaignPauseApi.as_view(), name="api-campaign-pause"),
    path("campaigns/<int:pk>/resume/", api.CampaignResumeApi.as_view(), name="api-campaign-resume"),
    path("campaigns/<int:pk>/cancel/", api.CampaignCancelApi.as_view(), name="api-campaign-cancel"),
    path(
        "campaigns/<int:pk>/test-send/",
        api.CampaignTestSendApi.as_view(),
        name="api-campaign-test-send",
    ),
    path(
        "campaigns/<int:pk>/unknown-messages/",
        api.CampaignUnknownMessagesApi.as_view(),
        name="api-campaign-unknown",
    ),
    path("messages/", transactional_api.MessageSendApi.as_view(), name="api-messages"),
    path("messages/<int:pk>/", transactional_api.MessageStatusApi.as_view(), name="api-message"),
    path("messages/<int:pk>/resend/", api.MessageResendApi.as_view(), name="api-message-resend"),
    path("bounces/", api.BounceReportApi.as_view(), name="api-bounces"),
    path("bounce-events/", feedback_api.BounceEventListApi.as_view(), name="api-bounce-events"),
    path("complaints/", feedback_api.ComplaintListApi.as_view(), name="api-complaints"),
    path("sender-events/", feedback_api.SenderEventListApi.as_view(), name="api-sender-events"),
    path("sender-health/", feedback_api.SenderHealthApi.as_view(), name="api-sender-health"),
    path("feedback-policy/", feedback_api.FeedbackPolicyApi.as_view(), name="api-feedback-policy"),
    path("unparsed-feedback/", feedback_api.UnparsedListApi.as_view(), name="api-unparsed"),
    path(
        "unparsed-feedback/<int:pk>/reprocess/",
        feedback_api.UnparsedReprocessApi.as_view(),
        name="api-unparsed-reprocess",
    ),
    path("", include("campaigns.journeys.api_urls")),
]
