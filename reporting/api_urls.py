"""Versioned API routes of the reporting app (mounted under /api/v1/)."""

from django.urls import path

from reporting import api

urlpatterns = [
    path(
        "webhooks/endpoints/",
        api.WebhookEndpointListApi.as_view(),
        name="api-webhook-endpoints",
    ),
    path(
        "webhooks/endpoints/<uuid:endpoint_id>/",
        api.WebhookEndpointDetailApi.as_view(),
        name="api-webhook-endpoint",
    ),
    path(
        "webhooks/endpoints/<uuid:endpoint_id>/rotate-secret/",
        api.WebhookEndpointRotateSecretApi.as_view(),
        name="api-webhook-endpoint-rotate-secret",
    ),
    path(
        "webhooks/endpoints/<uuid:endpoint_id>/test/",
        api.WebhookEndpointTestApi.as_view(),
        name="api-webhook-endpoint-test",
    ),
    path(
        "webhooks/endpoints/<uuid:endpoint_id>/deliveries/",
        api.WebhookDeliveryListApi.as_view(),
        name="api-webhook-deliveries",
    ),
    path(
        "webhooks/deliveries/<uuid:delivery_id>/redeliver/",
        api.WebhookDeliveryRedeliverApi.as_view(),
        name="api-webhook-delivery-redeliver",
    ),
    path(
        "webhooks/event-types/",
        api.WebhookEventTypesApi.as_view(),
        name="api-webhook-event-types",
    ),
    path("reports/summary/", api.ReportSummaryApi.as_view(), name="api-report-summary"),
    path("reports/split/<str:by>/", api.ReportSplitApi.as_view(), name="api-report-split"),
    path(
        "messages/<int:message_id>/events/",
        api.MessageEventListApi.as_view(),
        name="api-message-events",
    ),
]
