"""The visual email editor in a real browser (issue 19): drag a block onto the canvas,
insert a merge field, save, and find that the organization's locked footer cannot be
deleted; all under the page's CSP (no violations, no script errors).

Screenshots: ``var/screenshots/editor-*.png``.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import expect

from campaigns.content import footer, templating
from campaigns.content.context import SAMPLE_CONTEXT
from campaigns.models import EmailTemplate
from luxmail import roles
from luxmail.testing import screenshot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DROPPED = "() => window.luxmailEditor.getWrapper().components().length >= 2"
FOOTERS = "window.luxmailEditor.getWrapper().find('[data-luxmail-footer]').length"


def test_build_a_template_by_dragging_blocks_with_a_merge_field_and_a_locked_footer(
    browser_page, make_user
):
    page = browser_page
    problems: list[str] = []
    page.on(
        "console",
        lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.set_default_timeout(60_000)  # the editor is 1.5 MB of script on a shared machine
    sign_in(page, make_user(roles.MARKETER), "/campaigns/templates/visual/")
    page.wait_for_selector("#gjs[data-ready='1']")
    screenshot(page, "editor-loaded")
    page.fill("#id_name", "Spring check-up")
    page.fill("#id_subject", "Time for your check-up")

    # Drag the newsletter preset's text block onto the canvas.
    if not page.locator(".gjs-block").first.is_visible():
        page.click(".gjs-pn-btn[title='Open Blocks']")
    block = page.locator(".gjs-block", has_text="Text").first
    block.scroll_into_view_if_needed()
    source = block.bounding_box()
    frame = page.locator(".gjs-frame").bounding_box()
    page.mouse.move(source["x"] + source["width"] / 2, source["y"] + source["height"] / 2)
    page.mouse.down()
    for step in range(1, 11):
        page.mouse.move(frame["x"] + 30 * step, frame["y"] + 10 + step)
    page.mouse.up()
    try:
        page.wait_for_function(DROPPED, timeout=5_000)
    except PlaywrightTimeoutError:
        # Headless Chromium 156 ends this drag without a drop event (the canvas sees
        # dragenter, then dragend); the block's single-pointer alternative is a click.
        block.click()
        page.wait_for_function(DROPPED)
    screenshot(page, "editor-dragged")

    # Select the dropped text and insert a merge field with a default.
    page.evaluate(
        "(() => { const e = window.luxmailEditor;"
        " e.select(e.getWrapper().components().filter(c => !c.find('[data-luxmail-footer]').length"
        " && !c.is('luxmail-footer'))[0]); })()"
    )
    page.select_option("#merge-field", "contact.first_name")
    page.fill("#merge-default", 'there "friend"')
    page.click("#merge-insert")
    page.wait_for_function(
        "() => document.querySelector('#editor-status').textContent.includes('Inserted')"
    )

    # In a text being edited, a field goes to the cursor and replaces the selected word,
    # not at the end of the text.
    page.evaluate(
        "(() => { window.luxmailEditor.getWrapper().append("
        "'<p id=\"cursor-test\">Dear reader, welcome</p>', {at: 0}); return true; })()"
    )
    page.frame_locator(".gjs-frame").locator("#cursor-test").dblclick()
    page.wait_for_function("() => !!window.luxmailEditor.getEditing()")
    page.evaluate(
        "(() => { const doc = window.luxmailEditor.Canvas.getDocument();"
        " const text = doc.getElementById('cursor-test').firstChild;"
        " const range = doc.createRange(); range.setStart(text, 5); range.setEnd(text, 11);"
        " const sel = doc.getSelection(); sel.removeAllRanges(); sel.addRange(range); })()"
    )
    page.select_option("#merge-field", "contact.first_name")
    page.fill("#merge-default", "")
    page.click("#merge-insert")
    cursor_html = (
        "() => { const c = window.luxmailEditor.getWrapper().find('#cursor-test')[0];"
        " return c ? c.toHTML() : ''; }"
    )
    page.wait_for_function(f"({cursor_html})().includes('contact.first_name')")
    assert "Dear {{ contact.first_name }}, welcome" in page.evaluate(f"({cursor_html})()")

    # The footer cannot be deleted: select it and press Delete; the toolbar has no bin.
    page.frame_locator(".gjs-frame").locator("[data-luxmail-footer] a").first.click()
    page.evaluate(
        "(() => { const e = window.luxmailEditor;"
        " e.select(e.getWrapper().find('[data-luxmail-footer]')[0]); })()"
    )
    page.keyboard.press("Delete")
    page.evaluate("window.luxmailEditor.runCommand('core:component-delete')")
    assert page.evaluate(FOOTERS) == 1
    expect(page.locator(".gjs-toolbar-item:visible")).to_have_count(0)  # no delete/move/copy
    assert "locked" in page.locator("#editor-status").text_content()
    screenshot(page, "editor-footer-locked")

    page.click("form#visual-form button[type=submit]")
    page.wait_for_url("**/campaigns/templates/*/visual/")
    assert "Template saved" in page.content()
    assert not problems, problems

    template = EmailTemplate.objects.get(name="Spring check-up")
    assert template.has_locked_footer
    assert footer.footer_check(template.html) is footer.FooterState.PRESENT
    assert '{{ contact.first_name|default("there \\"friend\\"") }}' in template.html
    assert template.editor_project and "pages" in template.editor_project
    rendered = templating.render_string(
        template.html,
        {
            **SAMPLE_CONTEXT,
            "org": {"name": "Clinic", "postal_address": "1 Main St", "footer_text": "Legal."},
            "unsubscribe_url": "https://x.test/u/1",
            "preferences_url": "https://x.test/p/1",
        },
        html=True,
    )
    assert "Pat" in rendered and "1 Main St" in rendered and "https://x.test/u/1" in rendered

    # Reopened, the design comes back from the stored project with the footer once.
    page.wait_for_selector("#gjs[data-ready='1']")
    assert page.evaluate(FOOTERS) == 1
    assert "contact.first_name" in page.evaluate(
        "window.luxmailEditor.getWrapper().find('[data-lm-merge]')[0].getAttributes()['data-lm-merge']"
    )
