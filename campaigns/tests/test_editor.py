"""Visual editor and template library (issue 19): the locked organization footer is
enforced on the server, hostile editor input ends in a clear error, the library's
templates render through the real sandbox, and saved blocks go through the API."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from campaigns import services
from campaigns.content import editor, footer, library, templating
from campaigns.models import EditorBlock, EmailTemplate
from luxmail import org, roles
from luxmail.api.services import api_key_create
from luxmail.models import AuditEvent

pytestmark = [pytest.mark.django_db]

BODY = "<p>Hello {{ contact.first_name|default('there') }}</p>"
WITH_FOOTER = f"<html><body>{BODY}{footer.FOOTER_HTML}</body></html>"


def visual_post(client, url, **overrides):
    data = {
        "name": "Visual",
        "subject": "Hello",
        "html": WITH_FOOTER,
        "text": "",
        "editor_project": json.dumps({"pages": [{"component": "x"}]}),
        "mode": "visual",
    }
    data.update(overrides)
    return client.post(url, data)


# --- the locked footer -------------------------------------------------------------------


def test_footer_states():
    assert footer.footer_check(WITH_FOOTER) is footer.FooterState.PRESENT
    assert footer.footer_check(BODY) is footer.FooterState.MISSING
    altered = WITH_FOOTER.replace(">Unsubscribe<", ">Leave<")
    assert footer.footer_check(altered) is footer.FooterState.ALTERED
    twice = WITH_FOOTER.replace(footer.FOOTER_HTML, footer.FOOTER_HTML * 2)
    assert footer.footer_check(twice) is footer.FooterState.ALTERED
    marker_only = BODY + '<div data-luxmail-footer="1">{{ org.name }}</div>'
    assert footer.footer_check(marker_only) is footer.FooterState.ALTERED


def test_visual_and_library_templates_must_carry_the_footer(make_user):
    actor = make_user(roles.MARKETER)
    with pytest.raises(footer.FooterError, match=r"footer block .* is missing"):
        services.template_create(
            name="No footer", subject="Hi", html=BODY, actor=actor, require_footer=True
        )
    template = services.template_create(
        name="With footer", subject="Hi", html=WITH_FOOTER, actor=actor, require_footer=True
    )
    assert template.has_locked_footer
    # Code templates without the footer stay possible, and are marked as lacking it.
    legacy = services.template_create(name="Legacy", subject="Hi", html=BODY, actor=actor)
    assert not legacy.has_locked_footer


def test_a_footer_once_present_cannot_be_removed_or_altered(make_user):
    actor = make_user(roles.MARKETER)
    template = services.template_create(name="Locked", subject="Hi", html=WITH_FOOTER, actor=actor)
    assert template.has_locked_footer
    with pytest.raises(footer.FooterError, match="missing"):
        services.template_update(template=template, html=BODY, actor=actor)
    altered = WITH_FOOTER.replace("{{ org.footer_text }}", "Nothing to see")
    with pytest.raises(footer.FooterError, match="altered"):
        services.template_update(template=template, html=altered, actor=actor)
    # Even a template that never had it may not carry an altered copy.
    with pytest.raises(footer.FooterError, match="altered"):
        services.template_create(name="Forged", subject="Hi", html=altered, actor=actor)
    template.refresh_from_db()
    assert template.html == WITH_FOOTER and template.version == 1


def test_the_footer_prints_the_organization_settings(make_user):
    actor = make_user(roles.ADMIN)
    org.org_settings_update(
        actor=actor, postal_address="9 Harbor Road, Bayview", footer_text="Legal words here."
    )
    rendered = services.template_preview(
        subject="Hi", html=WITH_FOOTER, text="", actor=make_user(roles.MARKETER)
    )
    assert "9 Harbor Road, Bayview" in rendered.html
    assert "Legal words here." in rendered.html
    assert "/u/preview/" in rendered.html  # the unsubscribe link
    assert rendered.html.count("Unsubscribe") == 1  # no second, appended footer


# --- the library ---------------------------------------------------------------------------


@pytest.mark.parametrize("entry", library.library_templates(), ids=lambda e: e.slug)
def test_each_library_template_renders_through_the_sandbox(entry, make_user):
    assert footer.footer_check(entry.html) is footer.FooterState.PRESENT
    assert '<html lang="en">' in entry.html and 'name="viewport"' in entry.html
    assert "max-width:600px" in entry.html  # fluid below 600 px, no media query needed
    assert entry.html.count("<table") == entry.html.count('role="presentation"')
    user = make_user(roles.PHI_MARKETER)
    for missing in (False, True):  # sample data, and a contact with every field empty
        rendered = services.template_preview(
            subject=entry.subject, html=entry.html, text="", actor=user, missing_fields=missing
        )
        assert "{{" not in rendered.html and "{%" not in rendered.html
        assert "Unsubscribe" in rendered.html and rendered.subject
        assert "Unsubscribe" in rendered.text
    if entry.slug == "appointment-reminder":
        assert templating.validate(subject=entry.subject, html=entry.html).phi_bearing
    if entry.slug == "secure-message-waiting":  # a notice about PHI carries none
        assert not templating.validate(subject=entry.subject, html=entry.html).phi_bearing


def test_library_page_creates_a_template_and_opens_the_editor(staff_client):
    client = staff_client(roles.MARKETER)
    page = client.get("/campaigns/templates/library/")
    assert page.status_code == 200
    for entry in library.library_templates():
        assert entry.name in page.content.decode()
    response = client.post(
        "/campaigns/templates/library/", {"slug": "newsletter", "name": "May newsletter"}
    )
    template = EmailTemplate.objects.get(name="May newsletter")
    assert response.status_code == 302
    assert response["Location"] == f"/campaigns/templates/{template.pk}/visual/"
    assert template.has_locked_footer and not template.phi_bearing
    again = client.post(
        "/campaigns/templates/library/", {"slug": "newsletter", "name": "May newsletter"}
    )
    assert again.status_code == 200 and "already exists" in again.content.decode()
    unknown = client.post("/campaigns/templates/library/", {"slug": "../../etc", "name": "x"})
    assert unknown.status_code == 200


# --- the editor page -----------------------------------------------------------------------


def test_editor_page_saves_html_and_project_with_a_scoped_csp(staff_client):
    client = staff_client(roles.MARKETER)
    page = client.get("/campaigns/templates/visual/")
    assert page.status_code == 200
    csp = page["Content-Security-Policy"]
    assert "style-src 'self' 'unsafe-inline'" in csp
    assert "script-src 'self'" in csp and "unsafe-eval" not in csp
    assert "unsafe-inline" not in client.get("/campaigns/templates/")["Content-Security-Policy"]
    config = page.context["config"]
    assert config["footerHtml"] == footer.FOOTER_HTML
    assert not any(f["phi"] for f in config["fields"])  # no PHI fields for a Marketer
    response = visual_post(client, "/campaigns/templates/visual/")
    template = EmailTemplate.objects.get(name="Visual")
    assert response.status_code == 302
    assert template.editor_project == {"pages": [{"component": "x"}]}
    # Saved from code mode, the old design no longer matches: it is dropped.
    visual_post(
        client, f"/campaigns/templates/{template.pk}/visual/", mode="code", editor_project=""
    )
    template.refresh_from_db()
    assert template.editor_project is None and template.version == 2


def test_phi_roles_see_phi_fields_marked(staff_client):
    page = staff_client(roles.PHI_MARKETER).get("/campaigns/templates/visual/")
    phi = [f for f in page.context["config"]["fields"] if f["phi"]]
    assert phi and all(f["path"].startswith("phi.") for f in phi)
    assert "secure" in page.context["config"]["phiWarning"]


def test_editor_refuses_a_missing_or_altered_footer_with_a_message(staff_client):
    client = staff_client(roles.MARKETER)
    missing = visual_post(client, "/campaigns/templates/visual/", html=BODY)
    assert missing.status_code == 200
    assert "footer block" in missing.content.decode() and "is missing" in missing.content.decode()
    altered = visual_post(
        client,
        "/campaigns/templates/visual/",
        html=WITH_FOOTER.replace("Email preferences", "Prefs"),
    )
    assert altered.status_code == 200 and "was altered" in altered.content.decode()
    assert not EmailTemplate.objects.exists()


HOSTILE_PROJECTS = {
    "deep nesting": "[" * 200_000 + "]" * 200_000,
    "deep objects": '{"a":' * 5_000 + "1" + "}" * 5_000,
    "not json": "{'pages': nope",
    "not an object": json.dumps([1, 2, 3]),
    "oversize": json.dumps({"x": "a" * (editor.MAX_PROJECT_BYTES + 10)}),
}


@pytest.mark.parametrize("name", HOSTILE_PROJECTS)
def test_hostile_editor_projects_end_in_a_clear_error(name, staff_client):
    client = staff_client(roles.MARKETER)
    response = visual_post(
        client, "/campaigns/templates/visual/", editor_project=HOSTILE_PROJECTS[name]
    )
    assert response.status_code == 200
    assert not EmailTemplate.objects.exists()
    body = response.content.decode()
    assert "editor project" in body or "at most" in body


def test_hostile_template_html_ends_in_a_clear_error(staff_client):
    client = staff_client(roles.MARKETER)
    oversize = WITH_FOOTER + "<p>" + "a" * templating.MAX_SOURCE_BYTES + "</p>"
    response = visual_post(client, "/campaigns/templates/visual/", html=oversize)
    assert response.status_code == 200 and "the limit is" in response.content.decode()
    escape = WITH_FOOTER.replace(BODY, "{{ ''.__class__.__mro__ }}")
    response = visual_post(client, "/campaigns/templates/visual/", html=escape)
    assert response.status_code == 200 and "internal attribute" in response.content.decode()
    assert not EmailTemplate.objects.exists()


# --- saved blocks --------------------------------------------------------------------------


def api(scopes, admin):
    issued = api_key_create(name="test", scopes=scopes, actor=admin)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
    return client


def test_saved_blocks_api(make_user):
    admin = make_user(roles.ADMIN)
    writer = api(["campaigns:read", "campaigns:write"], admin)
    created = writer.post(
        "/api/v1/editor-blocks/",
        {"name": "  Call   us ", "html": "<p>Call {{ org.name }}</p>"},
        format="json",
    )
    assert created.status_code == 201, created.content
    assert created.json()["name"] == "Call us"
    listed = api(["campaigns:read"], admin).get("/api/v1/editor-blocks/").json()
    assert [b["name"] for b in listed["results"]] == ["Call us"]
    assert AuditEvent.objects.filter(action="template.block_create").count() == 1
    refused = {
        "footer": {"name": "F", "html": footer.FOOTER_HTML},
        "syntax": {"name": "S", "html": "<p>{% if %}</p>"},
        "unknown name": {"name": "U", "html": "<p>{{ secrets }}</p>"},
        "duplicate": {"name": "Call us", "html": "<p>x</p>"},
        "oversize": {"name": "O", "html": "a" * (editor.MAX_BLOCK_BYTES + 1)},
    }
    for case, body in refused.items():
        response = writer.post("/api/v1/editor-blocks/", body, format="json")
        assert response.status_code == 400, case
        assert response.json().get("detail") or response.json().get("html"), case
    reader_post = api(["campaigns:read"], admin).post(
        "/api/v1/editor-blocks/", {"name": "R", "html": "<p>x</p>"}, format="json"
    )
    assert reader_post.status_code == 403
    block = EditorBlock.objects.get()
    assert writer.delete(f"/api/v1/editor-blocks/{block.pk}/").status_code == 204
    assert not EditorBlock.objects.exists()
