"""Versioned API routes of the portal app (mounted under /api/v1/)."""

urlpatterns: list = []
