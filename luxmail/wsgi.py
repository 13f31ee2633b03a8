"""WSGI entry point (gunicorn luxmail.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "luxmail.settings")

application = get_wsgi_application()

# An accepted open or click must survive a Redis crash: refuse to serve (production) or
# warn loudly (dev) when the tracking store cannot promise that (docs/operations.md).
from reporting.buffer import enforce_durability  # noqa: E402

enforce_durability()
