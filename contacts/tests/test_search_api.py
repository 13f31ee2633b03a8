"""API of issue 20: POST search with keyset cursor, tags, bulk jobs with scopes and
hostile bodies (forged ids, empty selections, oversize text)."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from contacts import services
from contacts.models import BulkJob, ContactTag, Suppression
from contacts.services import tags
from luxmail.api import services as api_services

pytestmark = [pytest.mark.django_db]


def _bearer(admin, scopes):
    issued = api_services.api_key_create(name="integration", scopes=scopes, actor=admin)
    client = Client()
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {issued.secret}"
    return client


def _post(client, url, data):
    return client.post(url, data=json.dumps(data), content_type="application/json")


@pytest.fixture
def people(admin):
    rows = [
        {"email": f"p{i}@example.org", "first_name": name, "last_name": "Rivera"}
        for i, name in enumerate(["Ana", "Ben", "Cy"])
    ]
    return [services.contact_create(data=row, actor=admin) for row in rows]


def test_search_pages_by_cursor_and_masks_without_phi_scope(admin, people):
    api = _bearer(admin, ["contacts:read"])
    first = _post(api, "/api/v1/contacts/search/", {"q": "rivera", "limit": 2})
    assert first.status_code == 200, first.content
    body = first.json()
    assert len(body["results"]) == 2 and body["next_cursor"]
    assert body["results"][0]["email"].startswith("p") and "***" in body["results"][0]["email"]
    rest = _post(api, "/api/v1/contacts/search/", {"q": "rivera", "after": body["next_cursor"]})
    assert len(rest.json()["results"]) == 1 and rest.json()["next_cursor"] is None
    assert _post(api, "/api/v1/contacts/search/", {"q": "x" * 5000}).status_code == 400
    assert _post(api, "/api/v1/contacts/search/", {"q": "!!!"}).status_code == 400


def test_tags_and_bulk_tag_then_suppress_by_filter(
    admin, people, django_capture_on_commit_callbacks
):
    api = _bearer(admin, ["contacts:read", "contacts:write", "suppressions:write"])
    tag = _post(api, "/api/v1/tags/", {"name": "Fair 2026"}).json()
    assert _post(api, "/api/v1/tags/", {"name": "fair 2026"}).status_code == 400
    with django_capture_on_commit_callbacks(execute=True):
        started = _post(
            api,
            "/api/v1/contacts/bulk/",
            {"action": "tag", "tag_id": tag["id"], "filter": {"q": "ana rivera"}},
        )
    assert started.status_code == 202, started.content
    job = api.get(f"/api/v1/contacts/bulk/{started.json()['uuid']}/").json()
    assert (job["status"], job["total"], job["changed"]) == ("succeeded", 1, 1)
    with django_capture_on_commit_callbacks(execute=True):
        suppressed = _post(
            api, "/api/v1/contacts/bulk/", {"action": "suppress", "filter": {"tag": tag["id"]}}
        )
    assert suppressed.status_code == 202
    assert Suppression.objects.count() == 1
    assert api.get("/api/v1/tags/").json()[0]["contacts"] == 1


def test_bulk_refuses_forged_empty_and_unscoped(admin, people):
    reader = _bearer(admin, ["contacts:read", "contacts:write"])
    tag = services_tag(admin)
    forged = _post(
        reader,
        "/api/v1/contacts/bulk/",
        {"action": "tag", "tag_id": tag.pk, "contact_ids": [999_999]},
    )
    assert forged.status_code == 400 and "nothing to do" in forged.json()["detail"]
    empty = _post(
        reader, "/api/v1/contacts/bulk/", {"action": "tag", "tag_id": tag.pk, "contact_ids": []}
    )
    assert empty.status_code == 400
    no_scope = _post(
        reader, "/api/v1/contacts/bulk/", {"action": "suppress", "contact_ids": [people[0].pk]}
    )
    assert no_scope.status_code == 403
    delete = _post(
        reader, "/api/v1/contacts/bulk/", {"action": "delete", "contact_ids": [people[0].pk]}
    )
    assert delete.status_code == 400 and "confirmation" in delete.json()["detail"]
    assert BulkJob.objects.count() == 0 and ContactTag.objects.count() == 0


def services_tag(admin):
    return tags.tag_create(name="T", actor=admin)
