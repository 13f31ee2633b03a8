"""/api/docs/ in a real browser (issue 12, item 12): Swagger UI renders the operations
from the vendored assets under the site's strict CSP, with nothing loaded from another
origin and no CSP violation.

Screenshot: ``var/screenshots/api-docs.png``.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from luxmail.testing import screenshot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_api_docs_render_operations_under_the_csp(browser_page, live_server, make_user):
    page = browser_page
    problems: list[str] = []
    page.on(
        "console",
        lambda message: (
            problems.append(message.text)
            if message.type == "error" or "Content Security Policy" in message.text
            else None
        ),
    )
    page.on("pageerror", lambda error: problems.append(str(error)))
    origins: set[str] = set()
    page.on("request", lambda request: origins.add(urlsplit(request.url).netloc))

    sign_in(page, make_user("Admin"))
    page.goto("/api/docs/")
    page.wait_for_selector(".opblock", timeout=30_000)
    operations = page.locator(".opblock").count()
    assert operations > 10
    assert page.locator(".opblock-summary-path", has_text="/api/v1/contacts/").count() >= 1
    assert page.locator(".info .title").inner_text().startswith("LuxMail API")
    screenshot(page, "api-docs")
    assert origins == {urlsplit(live_server.url).netloc}
    assert problems == []
