"""A contact's encryption keys (mounted under /contacts/ next to the contacts UI)."""

from django.urls import path

from contacts.keys import views

app_name = "contact_keys"

urlpatterns = [
    path("<uuid:contact_uuid>/keys/", views.index, name="index"),
    path("<uuid:contact_uuid>/keys/<uuid:key_uuid>/remove/", views.remove, name="remove"),
]
