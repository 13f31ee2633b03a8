from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from luxmail import devtools, health, notification_views, views
from luxmail.api.views import ApiDocsView

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("healthz", health.healthz, name="healthz"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("accounts/", include("luxmail.accounts.urls")),
    # Single sign-on (/oidc/…, /saml2/…): each answers 404 unless configured.
    path("", include("luxmail.accounts.sso.urls")),
    path("webauthn/", include("luxmail.accounts.webauthn_urls", namespace="otp_webauthn")),
    path("notifications/", views.notification_list, name="notifications"),
    path(
        "notifications/<int:pk>/read/",
        notification_views.notification_read,
        name="notification_read",
    ),
    path(
        "notifications/preferences/",
        notification_views.notification_preferences,
        name="notification_preferences",
    ),
    path("staff/", include("luxmail.staff_urls")),
    path("audit/", views.audit_log, name="audit"),
    path("audit/verify/", views.audit_verify, name="audit_verify"),
    path("audit/export/", views.audit_export, name="audit_export"),
    path("settings/", views.org_settings, name="settings"),
    path("settings/api-keys/", views.api_keys, name="api_keys"),
    path("settings/legal-holds/place/", views.legal_hold_place, name="legal_hold_place"),
    path(
        "settings/legal-holds/<uuid:hold_uuid>/release/",
        views.legal_hold_release,
        name="legal_hold_release",
    ),
    path("settings/api-keys/<uuid:key_uuid>/revoke/", views.api_key_revoke, name="api_key_revoke"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", ApiDocsView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", include("luxmail.api.urls")),
    path("contacts/", include("contacts.keys.urls")),
    path("contacts/", include("contacts.urls")),
    path("campaigns/", include("campaigns.urls")),
    path("u/", include("campaigns.public_urls")),
    path("t/", include("reporting.public_urls")),
    # The portal: recipients under /portal/<token>/ (public), staff under /secure-messages/.
    path("", include("portal.urls")),
    path("reports/", include("reporting.urls")),
    # Dev outbox (make run only; every view answers 404 outside the dev mode).
    path("dev/outbox/", devtools.outbox, name="dev_outbox"),
    path("dev/outbox/clear/", devtools.outbox_clear, name="dev_outbox_clear"),
    path("dev/outbox/<str:name>/", devtools.outbox_message, name="dev_outbox_message"),
    path("dev/outbox/<str:name>/html/", devtools.outbox_html, name="dev_outbox_html"),
    path("dev/outbox/<str:name>/parts/<int:index>/", devtools.outbox_part, name="dev_outbox_part"),
]
