"""The segment builder in a real browser: three conditions (one in a nested group), the
live HTMX count, a validation message next to its condition, save, and the same count
from ``POST /api/v1/segments/{id}/count``.

Screenshots: ``var/screenshots/segments-*.png``.
"""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from django.test import Client
from django.utils import timezone

from contacts import services
from contacts.models import Segment
from contacts.tokens import age_on
from luxmail import roles
from luxmail.testing import screenshot, sign_in, verify_session

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CONDITIONS = [["E11.9"], ["I10"], ["E11.65", "I10"], None, ["E78.5"]]
ZIPS = ["02139", "02140", "10001", "60601", "02210"]


def make_people(actor):
    today = timezone.localdate()
    rows, expected, diabetics = [], 0, 0
    for i in range(40):
        birth = dt.date(1940 + (i * 7) % 60, 1 + i % 12, 1 + i % 27)
        conditions = CONDITIONS[i % len(CONDITIONS)]
        zip_code = ZIPS[(i // 2) % len(ZIPS)]
        rows.append(
            {
                "email": f"patient{i}@example.org",
                "birth_date": birth.isoformat(),
                "conditions": conditions,
                "zip_code": zip_code,
            }
        )
        diabetic = any(code.startswith("E11") for code in conditions or [])
        diabetics += diabetic
        if diabetic and age_on(birth, today) >= 50 and zip_code.startswith("021"):
            expected += 1
    result = services.contacts_bulk_upsert(rows=rows, actor=actor)
    assert result.ok and result.created == 40
    return expected, diabetics


def condition(page, index):
    return page.locator(".rule-condition").nth(index)


def live_count(page, expected):
    page.wait_for_function(
        "n => { const c = document.querySelector('#segment-count');"
        " return c && c.dataset.state === 'ok' && c.dataset.count === String(n); }",
        arg=expected,
    )
    return int(page.locator("#segment-count").get_attribute("data-count"))


def test_builder_counts_three_conditions_live_and_matches_the_api(browser_page, make_user):
    page = browser_page
    problems = []
    page.on(
        "console",
        lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.on("pageerror", lambda error: problems.append(str(error)))
    user = make_user(roles.PHI_MARKETER)
    expected, diabetics = make_people(make_user(roles.ADMIN))
    assert 0 < expected < 40
    sign_in(page, user)

    page.goto("/contacts/segments/")
    page.click("text=New segment")
    page.wait_for_url("**/contacts/segments/new/")
    page.fill("#id_name", "Diabetics 50+ in Boston")

    # 1: Condition (ICD-10) is E11 — the operator list follows the field's type.
    condition(page, 0).locator("select.cond-field").select_option("condition")
    ops = (
        condition(page, 0)
        .locator("select.cond-op option")
        .evaluate_all("options => options.map(o => o.value)")
    )
    assert ops == ["eq", "ne", "in", "not_in", "exists"]
    condition(page, 0).locator(".cond-value input").fill("E11")
    assert live_count(page, diabetics) == diabetics

    # 2: Age at least 50; a wrong value first shows a message next to this condition.
    page.click("#builder-root > .rule-group > .group-actions .add-condition")
    condition(page, 1).locator("select.cond-field").select_option("age")
    age_ops = (
        condition(page, 1)
        .locator("select.cond-op option")
        .evaluate_all("options => options.map(o => o.value)")
    )
    assert "between" in age_ops and "within_last_days" not in age_ops
    condition(page, 1).locator("select.cond-op").select_option("gte")
    condition(page, 1).locator(".cond-value input").fill("200")
    error = condition(page, 1).locator(".rule-error")
    error.wait_for(state="visible")
    assert "an age must be between 0 and 130" in error.inner_text()
    assert page.locator("#segment-count").get_attribute("data-state") == "invalid"
    screenshot(page, "segments-01-validation")
    condition(page, 1).locator(".cond-value input").fill("50")
    error.wait_for(state="hidden")

    # 3: a nested "any of" group holding ZIP area 021.
    page.click("#builder-root > .rule-group > .group-actions .add-group")
    nested = page.locator(".rule-group.depth-1")
    assert nested.locator("select.group-mode").input_value() == "any"
    nested.locator(".rule-condition select.cond-field").select_option("zip3")
    nested.locator(".rule-condition .cond-value input").fill("021")
    count = live_count(page, expected)
    assert count <= diabetics
    sample = page.locator("#segment-preview table.sample tbody tr")
    assert sample.count() == min(expected, 10)
    assert re.fullmatch(r"p\*\*\*@example\.org", sample.first.locator("td").first.inner_text())
    screenshot(page, "segments-02-three-conditions")

    rules = json.loads(page.locator("textarea[name=rules]").input_value())
    assert rules == {
        "all": [
            {"field": "condition", "op": "eq", "value": "E11"},
            {"field": "age", "op": "gte", "value": 50},
            {"any": [{"field": "zip3", "op": "eq", "value": "021"}]},
        ]
    }

    page.click("#save-segment")
    page.wait_for_url(re.compile(r".*/contacts/segments/\d+/$"))
    segment = Segment.objects.get(name="Diabetics 50+ in Boston")
    assert segment.rules == rules
    assert live_count(page, expected) == count  # the saved segment reloads into the builder

    api = Client()
    verify_session(api, user)
    response = api.post(f"/api/v1/segments/{segment.pk}/count")
    assert response.status_code == 200, response.content
    assert response.json()["count"] == count == expected

    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    live_count(page, expected)
    screenshot(page, "segments-03-phone")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390 + 1
    assert problems == []
