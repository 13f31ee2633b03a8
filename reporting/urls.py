from django.urls import path

from reporting import chart_views, schedule_views, views

app_name = "reporting"

urlpatterns = [
    path("", views.index, name="index"),
    path("compliance/", views.compliance, name="compliance"),
    path("compliance/export.csv", views.compliance_export, name="compliance_export"),
    path("export.<str:fmt>", views.export, name="export"),
    path("charts/<slug:name>.<str:fmt>", chart_views.chart_export, name="chart_export"),
    path("schedules/", schedule_views.schedules, name="schedules"),
    path(
        "schedules/<int:schedule_id>/delete/",
        schedule_views.schedule_delete,
        name="schedule_delete",
    ),
    path("messages/<int:message_id>/", views.message_events, name="message_events"),
    path("campaigns/<int:campaign_id>/links/", views.campaign_links, name="campaign_links"),
    path("webhooks/", views.webhooks, name="webhooks"),
    path("webhooks/<uuid:endpoint_uuid>/", views.webhook_detail, name="webhook_detail"),
    path(
        "webhooks/<uuid:endpoint_uuid>/<slug:action>/",
        views.webhook_action,
        name="webhook_action",
    ),
    path(
        "webhooks/deliveries/<uuid:delivery_uuid>/redeliver/",
        views.webhook_redeliver,
        name="webhook_redeliver",
    ),
]
