"""``/u/``: recipients' unsubscribe and preferences pages (token-authorized, no login)."""

from django.urls import path

from campaigns import public_views

app_name = "unsubscribe"

urlpatterns = [
    path("<str:token>/", public_views.unsubscribe, name="unsubscribe"),
    path("<str:token>/preferences/", public_views.preferences, name="preferences"),
]
