"""``/t/``: tracking endpoints (normally answered by TrackingFastPathMiddleware first)."""

from django.urls import path

from reporting import public_views

app_name = "tracking"

urlpatterns = [
    path("o/<str:token>", public_views.open_pixel, name="open"),
    path("c/<str:token>", public_views.click, name="click"),
]
