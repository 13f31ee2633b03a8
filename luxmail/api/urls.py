"""``/api/v1/``: every app registers its endpoints here, versioned together."""

from django.urls import include, path

from luxmail.api import views

urlpatterns = [
    path("", views.ApiRootView.as_view(), name="api-root"),
    path("me/", views.WhoAmIView.as_view(), name="api-me"),
    path("", include("contacts.api_urls")),
    path("", include("campaigns.api_urls")),
    path("", include("portal.api_urls")),
    path("", include("reporting.api_urls")),
]
