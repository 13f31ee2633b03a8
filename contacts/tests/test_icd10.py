"""The ICD-10-CM picker's search and JSON endpoint (issue 20): by code and by name,
bounded results, hostile queries, and the same code validation the services use."""

from __future__ import annotations

import pytest
from django.urls import reverse

from contacts import icd10
from contacts.attributes import normalize_icd10
from luxmail import roles


def codes(query, **kw):
    return [item.code for item in icd10.search(query, **kw)]


def test_a_name_finds_the_code():
    assert codes("diab")[0] == "E11.9"
    assert codes("type 2 diabetes")[0] == "E11.9"
    assert icd10.describe("e11.9") == "Type 2 diabetes mellitus without complications"
    assert "I10" in codes("hypertension")


def test_a_code_prefix_lists_the_category_first():
    found = codes("E11")
    assert found[0] == "E11" and all(code.startswith("E11") for code in found)
    assert codes("e119")[0] == "E11.9"


def test_every_listed_code_passes_contact_validation():
    for item in icd10.codes()[::97]:
        assert normalize_icd10("conditions", item.code) == item.code


@pytest.mark.parametrize(
    "query", ["", "   ", "x" * 100_000, "((((", ".*", "\x00", "a", "diab " * 500, "💉🩺"]
)
def test_hostile_queries_are_bounded(query):
    found = icd10.search(query, limit=10_000)
    assert len(found) <= icd10.MAX_RESULTS


@pytest.mark.django_db
def test_endpoint_needs_sign_in_and_returns_bounded_json(client, staff_client):
    url = reverse("contacts:icd10")
    assert client.get(url, {"q": "diab"}).status_code in (302, 403)
    staff = staff_client(roles.MARKETER)
    response = staff.get(url, {"q": "type 2 diabetes", "limit": "999"})
    assert response.status_code == 200
    results = response.json()["results"]
    assert results[0] == {
        "code": "E11.9",
        "description": "Type 2 diabetes mellitus without complications",
        "billable": True,
    }
    assert len(results) <= icd10.MAX_RESULTS
    assert staff.get(url, {"q": "%" * 5000, "limit": "-3"}).json() == {"results": []}


def test_the_first_parse_writes_a_compact_index_that_later_loads_read(
    settings, tmp_path, monkeypatch
):
    settings.VAR_DIR = tmp_path
    parsed = icd10._load()
    index = icd10.index_path()
    assert index.is_relative_to(tmp_path) and index.exists()

    def no_parse(source):
        raise AssertionError("the index should have been read")

    monkeypatch.setattr(icd10, "_parse", no_parse)
    assert icd10._load() == parsed
    monkeypatch.undo()
    # A damaged or truncated index is ignored and rewritten, never trusted.
    index.write_text("E11.9\tmaybe\tType 2 diabetes\nrubbish\n", encoding="utf-8")
    assert icd10._load() == parsed
    assert icd10._read_index(index) == parsed


def test_start_up_builds_a_missing_index_in_the_background(settings, tmp_path, monkeypatch):
    settings.VAR_DIR = tmp_path
    monkeypatch.setattr(icd10, "_codes", None)
    thread = icd10.warm_in_background()
    assert thread is not None
    thread.join(timeout=120)
    assert icd10.index_path().exists() and icd10._codes is not None
    assert icd10.warm_in_background() is None  # already built: nothing to do
