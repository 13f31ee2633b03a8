"""Run one upload through the real view and the real import task, in a child process.

``python -m contacts.tests.import_child USER_ID`` with the test database in
``DATABASE_URL``: the address space is capped at 1 GiB *before* Django loads; once
loaded it prints ``ready`` and reads the file's path from stdin. The file is posted
to the upload page as the user (Celery eager, so the reading task runs on commit),
and one JSON line reports the HTTP status, the job and the peak memory. The parent
(``test_import_hostile.py``) kills it 20 s after sending the path.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

ADDRESS_SPACE = 1 << 30


def main() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))
    user_id = int(sys.argv[1])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "luxmail.test_settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.test.utils import setup_test_environment
    from django.urls import reverse

    from contacts.models import ImportJob
    from luxmail.testing import verify_session

    setup_test_environment()
    client = Client(raise_request_exception=False)
    verify_session(client, get_user_model().objects.get(pk=user_id))
    client.get(reverse("contacts:import"))  # warm up: templates, URL resolver
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    path = Path(sys.stdin.readline().strip())
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    with path.open("rb") as handle:
        response = client.post(reverse("contacts:import"), {"file": handle})
    job = ImportJob.objects.order_by("-id").first()
    page = client.get(response["Location"]) if response.status_code == 302 else response
    sys.stdout.write(
        json.dumps(
            {
                "status": response.status_code,
                "page_status": page.status_code,
                "page": page.content.decode(errors="replace"),
                "job_status": job.status if job else None,
                "failure": job.failure if job else "",
                "seconds": round(time.monotonic() - started, 2),
                "maxrss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "baseline_mb": round(baseline / 1024, 1),
            }
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
