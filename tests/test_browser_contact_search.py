"""Issue 20 in a real browser: a name search (posted, never in the URL), a bulk tag and
suppress of a filtered selection with the job's progress page, and picking "type 2
diabetes" by name into a segment with the ICD-10-CM combobox (keyboard only).

Screenshots: ``var/screenshots/contact-search-*.png``.
"""

from __future__ import annotations

import json
import re

import pytest

from contacts import services
from contacts.models import BulkJob, ContactTag, Suppression, Tag
from luxmail import roles
from luxmail.testing import screenshot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def watch(page):
    problems: list[str] = []
    page.on(
        "console",
        lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.on("pageerror", lambda error: problems.append(str(error)))
    return problems


def people(actor):
    rows = [
        {"email": "ana.rivera@example.org", "first_name": "Ana", "last_name": "Rivera"},
        {"email": "ben.rivers@example.org", "first_name": "Ben", "last_name": "Rivers"},
        {"email": "cy.young@example.org", "first_name": "Cy", "last_name": "Young"},
    ]
    return [services.contact_create(data=row, actor=actor) for row in rows]


def test_name_search(browser_page, make_user):
    page = browser_page
    problems = watch(page)
    people(make_user(roles.ADMIN))
    sign_in(page, make_user(roles.PHI_MARKETER))
    page.goto("/contacts/")
    page.fill("#id_q", "rive")
    page.click("#search-form button[type=submit]")
    page.wait_for_selector("text=ana.rivera@example.org")
    table = page.inner_text("table")
    assert "ben.rivers@example.org" in table and "cy.young" not in table
    assert "rive" not in page.url
    screenshot(page, "contact-search-01-name")
    assert problems == []


def test_bulk_tag_and_suppress_a_filtered_selection(browser_page, make_user):
    page = browser_page
    problems = watch(page)
    admin = make_user(roles.ADMIN)
    ana, _ben, cy = people(admin)
    fair = services.contact_list_create(name="Health fair", actor=admin)
    services.list_members_add(contact_list=fair, contact_ids=[ana.pk, cy.pk], actor=admin)
    sign_in(page, make_user(roles.MARKETER))

    page.goto("/contacts/")
    page.select_option("#id_contact_list", str(fair.pk))
    page.click("form.filters button[type=submit]")
    page.wait_for_url(re.compile(r".*contact_list=\d+"))
    assert page.locator("table tbody tr").count() == 2
    page.select_option("#id_action", "tag")
    page.fill("#id_new_tag", "Call back")
    page.check("input[name=scope][value=all]")
    page.click("#bulk-form button[type=submit]")
    page.wait_for_url("**/contacts/bulk/*/")
    page.wait_for_selector("#bulk-progress >> text=Succeeded")
    screenshot(page, "contact-search-02-bulk-tagged")
    tag = Tag.objects.get(name="Call back")
    assert sorted(ContactTag.objects.values_list("contact_id", flat=True)) == [ana.pk, cy.pk]

    page.goto(f"/contacts/?tag={tag.pk}")
    page.check(f"#select-{ana.pk}")
    page.check(f"#select-{cy.pk}")
    page.select_option("#id_action", "suppress")
    page.select_option("#id_suppress_reason", "manual")
    page.click("#bulk-form button[type=submit]")
    page.wait_for_selector("#bulk-progress >> text=Succeeded")
    assert "2 of 2 contacts done" in page.inner_text("#bulk-progress")
    assert Suppression.objects.filter(removed_at=None).count() == 2
    assert BulkJob.objects.count() == 2
    assert problems == []


def test_pick_type_2_diabetes_by_name_into_a_segment(browser_page, make_user):
    page = browser_page
    problems = watch(page)
    sign_in(page, make_user(roles.PHI_MARKETER))
    page.goto("/contacts/segments/new/")
    page.fill("#id_name", "Type 2 diabetics")
    condition = page.locator(".rule-condition").first
    condition.locator("select.cond-field").select_option("condition")
    box = condition.locator(".cond-value input")
    assert box.get_attribute("role") == "combobox"
    box.press_sequentially("type 2 diab", delay=20)
    option = page.locator(
        "[role=option]", has_text="Type 2 diabetes mellitus without complications"
    )
    option.first.wait_for(timeout=30_000)
    assert box.get_attribute("aria-expanded") == "true"
    screenshot(page, "contact-search-03-icd10-picker")
    box.press("ArrowDown")
    assert box.get_attribute("aria-activedescendant")
    box.press("Enter")
    assert box.input_value() == "E11.9"
    assert box.get_attribute("aria-expanded") == "false"
    rules = json.loads(page.locator("textarea[name=rules]").input_value())
    assert rules == {"all": [{"field": "condition", "op": "eq", "value": "E11.9"}]}
    assert problems == []
