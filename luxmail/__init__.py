"""LuxMail: PHI-safe email marketing for healthcare organizations."""

from luxmail.celery import app as celery_app

__all__ = ["celery_app"]
