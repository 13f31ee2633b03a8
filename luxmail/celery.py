"""The Celery application. Tasks take ids, never PHI (DESIGN.md §4)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "luxmail.settings")

app = Celery("luxmail")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
