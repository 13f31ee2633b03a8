"""Import and contact pages in a real browser with a real Celery worker: upload, mapping,
the check with its row errors, the HTMX progress bar, the result, then a contact's
"Show PHI" (HTMX, audited).

Screenshots: ``var/screenshots/contacts-*.png``.
"""

from __future__ import annotations

import os
import signal

import pytest

from contacts.models import Contact, ImportJob, ImportJobStatus
from contacts.tests.test_import import _rows, import_dir, real_worker  # noqa: F401  (fixtures)
from luxmail import roles
from luxmail.models import AuditEvent
from luxmail.testing import screenshot, sign_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.celery,
    pytest.mark.redis,
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]


def test_import_with_progress_then_show_phi(
    browser_page,
    real_worker,  # noqa: F811  (the fixture imported above)
    make_user,
    settings,
    tmp_path,
):
    settings.LUXMAIL_IMPORT_BATCH = 250
    worker = real_worker()
    page = browser_page
    problems = []
    page.on(
        "console",
        lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("dialog", lambda dialog: dialog.accept())
    user = make_user(roles.PHI_MARKETER)
    sign_in(page, user)

    rows = _rows(4000).splitlines()
    rows[3] = "not-an-email,Bad,1970-01-01,E11.9,02139,yes"  # spreadsheet row 4
    upload = tmp_path / "clinic export.csv"
    upload.write_text("\n".join(rows) + "\n")

    page.goto("/contacts/import/")
    page.set_input_files("#id_file", str(upload))
    page.click("form:has(#id_file) button[type=submit]")
    page.wait_for_url("**/contacts/import/*/")
    # The worker reads the file after the upload; the page polls, then shows the mapping.
    page.wait_for_selector("select[name=col_2]", timeout=60_000)
    assert page.locator("select[name=col_2]").input_value() == "birth_date"
    screenshot(page, "contacts-01-mapping")
    page.click("#check-import")
    page.wait_for_selector("#check-h", timeout=120_000)
    assert "3999 new contacts would be created" in page.inner_text(".preview-counts")
    errors = page.locator("table.import-errors tbody tr")
    assert errors.count() == 1
    assert errors.first.inner_text().split("\t")[:2] == ["4", "email → Email"]
    assert "not-an-email" not in page.content()
    screenshot(page, "contacts-02-check")

    # Stop the worker so the confirmed job waits in the queue: otherwise a quick import
    # can finish before the page loads and the progress bar is never on screen.
    os.killpg(worker.pid, signal.SIGTERM)
    worker.wait(timeout=60)
    page.check("#id_skip_invalid")
    page.click("#confirm-import")
    page.wait_for_selector("#import-progress progress[max='4000']", timeout=30_000)
    screenshot(page, "contacts-03-progress")
    real_worker()  # the page polls and shows the result once the import ends
    page.wait_for_selector("#done-h", timeout=180_000)
    counts = page.inner_text(".preview-counts")
    assert "3999 created" in counts
    assert "The uploaded file was deleted." in page.content()
    screenshot(page, "contacts-04-imported")
    job = ImportJob.objects.get()
    assert job.status == ImportJobStatus.SUCCEEDED and job.skipped_count == 1
    assert Contact.objects.count() == 3999

    page.goto("/contacts/")
    page.fill("#id_q", "PATIENT7@example.org")
    page.click("form.search-form button[type=submit]")
    page.wait_for_url("**/contacts/*-*/")
    assert "E11.7" not in page.content()
    before = AuditEvent.objects.filter(action="contact.view_phi").count()
    page.click("#show-phi")
    page.wait_for_selector(".phi-warning")
    panel = page.inner_text("#phi-panel")
    assert "patient7@example.org" in panel and "E11.7" in panel
    assert AuditEvent.objects.filter(action="contact.view_phi").count() == before + 1
    screenshot(page, "contacts-05-phi-shown")
    assert problems == []
