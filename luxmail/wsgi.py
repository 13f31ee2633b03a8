"""WSGI entry point (gunicorn luxmail.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

from luxmail import startup

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "luxmail.settings")

application = get_wsgi_application()

# Start-up checks the apps registered (luxmail.startup): e.g. an accepted open or click
# must survive a Redis crash, so reporting refuses to serve (production) or warns loudly
# (dev) when the tracking store cannot promise that (docs/operations.md).
startup.run_web_checks()
