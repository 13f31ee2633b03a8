"""Issue 20: contact search through blind indexes, filters, keyset pages, tags, bulk
jobs (selection and filter result), saved views, and hostile input on each."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

from contacts import search, services
from contacts.models import (
    BulkAction,
    BulkJob,
    BulkJobStatus,
    Contact,
    ContactTag,
    ContactTokenSet,
    SavedView,
    Suppression,
    Tag,
)
from contacts.services import bulk, tags
from luxmail import roles
from luxmail.models import AuditEvent

pytestmark = pytest.mark.django_db

PEOPLE = [
    {"email": "maria.lopez@example.org", "first_name": "Maria", "last_name": "López",
     "phone": "+16175550100"},
    {"email": "mary-jane.smith@example.org", "first_name": "Mary-Jane", "last_name": "Smith",
     "external_id": "EHR-77"},
    {"email": "john.smithson@example.org", "first_name": "John", "last_name": "Smithson"},
    {"email": "bo@example.org", "first_name": "Bo", "last_name": "Li"},
]  # fmt: skip


@pytest.fixture
def people(admin):
    return [services.contact_create(data=row, actor=admin) for row in PEOPLE]


def found(text):
    query = search.ContactQuery(search=search.blind_search(text))
    return sorted(c.pk for c in search.contacts_matching(query))


def ids(*contacts):
    return sorted(c.pk for c in contacts)


def test_name_search_matches_words_and_prefixes_through_tokens(people):
    maria, mary, john, bo = people
    assert found("lopez") == ids(maria)  # accents do not matter: NFKC + casefold
    assert found("LÓPEZ maria") == ids(maria)
    assert found("smi") == ids(mary, john)  # prefix of 3+ letters
    assert found("smith") == ids(mary, john)  # Smithson starts with Smith
    assert found("jane smith") == ids(mary)  # parts of a hyphenated name, all words must match
    assert found("mary-jane") == ids(mary)
    assert found("li") == ids(bo)  # short words match whole words only
    assert found("l") == []
    assert found("EHR-77") == ids(mary)  # an external id
    assert found("+1 (617) 555-0100") == ids(maria)  # a phone, any punctuation
    assert found("maria.lopez@EXAMPLE.org") == ids(maria)


def test_the_database_holds_no_name_in_clear(people):
    with connection.cursor() as cursor:
        cursor.execute("SELECT tokens FROM contacts_contacttokenset")
        dump = json.dumps([str(row) for row in cursor.fetchall()]).lower()
    assert "smith" not in dump and "maria" not in dump
    assert ContactTokenSet.objects.count() == len(PEOPLE)


def test_renaming_rewrites_the_name_tokens(admin, people):
    maria = people[0]
    services.contact_update(contact=maria, data={"last_name": "Rivera"}, actor=admin)
    assert found("rivera") == ids(maria)
    assert found("lopez") == []


@pytest.mark.parametrize(
    "text",
    ["x" * 201, "a b c d e f g", "@@@", "!!!", "not-an-address@", "\x00\x01!"],
)
def test_hostile_search_text_gets_a_friendly_error_without_echo(text):
    with pytest.raises(search.SearchError) as caught:
        search.blind_search(text)
    assert text not in caught.value.message


FRAKTUR_MARIA = "\U0001d510\U0001d51e\U0001d52f\U0001d526\U0001d51e"  # "Maria" in Fraktur


def test_huge_and_odd_search_on_the_page_never_500s(staff_client, people):
    client = staff_client(roles.PHI_MARKETER)
    for text in ["ä" * 5000, "%' OR 1=1 --", FRAKTUR_MARIA, "\u202e\u0000", "a" * 199]:
        response = client.post(reverse("contacts:index"), {"q": text})
        assert response.status_code in (200, 400), text
    # Mathematical letters normalize (NFKC) to plain ones: the search still works.
    response = client.post(reverse("contacts:index"), {"q": FRAKTUR_MARIA})
    assert "maria.lopez@example.org" in response.content.decode()


def test_page_search_is_posted_and_audited_without_the_text(staff_client, people):
    client = staff_client(roles.PHI_MARKETER)
    page = client.post(reverse("contacts:index"), {"q": "smith"}).content.decode()
    assert "mary-jane.smith@example.org" in page and "maria.lopez" not in page
    event = AuditEvent.objects.filter(action="contact.search").latest("id")
    assert event.details == {"kind": ["external_contact", "name_tokens"], "found": True} or (
        event.details["found"] is True and "smith" not in json.dumps(event.details)
    )


def test_keyset_pages_walk_every_contact_once(admin, people, monkeypatch):
    seen: list[int] = []
    after = None
    while True:
        page = search.contacts_page(search.ContactQuery(), after=after, size=3)
        seen += [c.pk for c in page.rows]
        if page.next_cursor is None:
            break
        after = page.next_cursor
    assert seen == sorted(ids(*people), reverse=True)


def test_filters_by_tag_suppression_and_consent(admin, people):
    maria, _mary, john, _bo = people
    vip = tags.tag_create(name="VIP", actor=admin)
    tags.contacts_tag(tag=vip, contact_ids=[maria.pk, john.pk, 999_999], actor=admin)
    services.suppression_add(contact=john, reason="hard_bounce", actor=admin)

    def query(**kw):
        return sorted(c.pk for c in search.contacts_matching(search.ContactQuery(**kw)))

    assert query(tag_id=vip.pk) == ids(maria, john)
    assert query(tag_id=vip.pk, suppressed="no") == ids(maria)
    assert query(suppression_reason="hard_bounce") == ids(john)
    assert query(consent="marketing:yes") == []
    assert query(consent="marketing:no") == ids(*people)
    assert query(status="bounced") == ids(john)


def run_jobs(django_capture_on_commit_callbacks, start):
    with django_capture_on_commit_callbacks(execute=True):
        job = start()
    job.refresh_from_db()
    return job


def test_bulk_tag_and_suppress_a_filtered_selection(
    admin, people, django_capture_on_commit_callbacks
):
    _maria, mary, john, _bo = people
    smiths = search.ContactQuery(search=search.blind_search("smith"))
    tag = tags.tag_create(name="Call back", actor=admin)
    job = run_jobs(
        django_capture_on_commit_callbacks,
        lambda: bulk.bulk_job_start(
            action=BulkAction.TAG, params={"tag_id": tag.pk}, query=smiths, actor=admin
        ),
    )
    assert (job.status, job.total, job.processed, job.changed) == ("succeeded", 2, 2, 2)
    assert sorted(ContactTag.objects.values_list("contact_id", flat=True)) == ids(mary, john)
    assert "smith" not in json.dumps(job.query)  # the filter keeps tokens, not the text
    job = run_jobs(
        django_capture_on_commit_callbacks,
        lambda: bulk.bulk_job_start(
            action=BulkAction.SUPPRESS,
            params={"reason": "manual"},
            query=search.ContactQuery(tag_id=tag.pk),
            actor=admin,
        ),
    )
    assert job.changed == 2 and Suppression.objects.filter(removed_at=None).count() == 2
    actions = list(AuditEvent.objects.values_list("action", flat=True))
    assert actions.count("contacts.bulk_start") == 2 and actions.count("contacts.bulk_finish") == 2


def test_bulk_runs_in_bounded_batches_and_requeues(
    admin, people, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setattr(bulk, "BATCH", 1)
    monkeypatch.setattr(bulk, "BATCHES_PER_RUN", 1)
    contact_list = services.contact_list_create(name="Fair", actor=admin)
    job = run_jobs(
        django_capture_on_commit_callbacks,
        lambda: bulk.bulk_job_start(
            action=BulkAction.ADD_TO_LIST,
            params={"list_id": contact_list.pk},
            contact_ids=[p.pk for p in people],
            actor=admin,
        ),
    )
    # CELERY_TASK_ALWAYS_EAGER: each run did one batch and queued the next.
    assert (job.status, job.processed, job.changed) == (BulkJobStatus.SUCCEEDED, 4, 4)


def test_bulk_delete_needs_confirmation_and_skips_nothing_else(
    admin, people, django_capture_on_commit_callbacks
):
    with pytest.raises(bulk.BulkError, match="confirmation"):
        bulk.bulk_job_start(
            action=BulkAction.DELETE, params={}, contact_ids=[people[0].pk], actor=admin
        )
    job = run_jobs(
        django_capture_on_commit_callbacks,
        lambda: bulk.bulk_job_start(
            action=BulkAction.DELETE,
            params={"confirm": True},
            contact_ids=[people[0].pk],
            actor=admin,
        ),
    )
    assert job.changed == 1 and Contact.objects.count() == 3


def test_bulk_on_nothing_and_forged_ids_change_nothing(admin, people):
    tag = tags.tag_create(name="X", actor=admin)
    for contact_ids in ([], [987_654_321], ["1 OR 1=1", "-5"]):
        with pytest.raises(bulk.BulkError, match="nothing to do"):
            bulk.bulk_job_start(
                action=BulkAction.TAG,
                params={"tag_id": tag.pk},
                contact_ids=contact_ids,
                actor=admin,
            )
    with pytest.raises(bulk.BulkError, match="nothing to do"):
        bulk.bulk_job_start(
            action=BulkAction.TAG,
            params={"tag_id": tag.pk},
            query=search.ContactQuery(search=search.blind_search("nobody")),
            actor=admin,
        )
    with pytest.raises(bulk.BulkError, match="tag"):
        bulk.bulk_job_start(
            action=BulkAction.TAG,
            params={"tag_id": 424242},
            contact_ids=[people[0].pk],
            actor=admin,
        )
    with pytest.raises(bulk.BulkError, match="at most"):
        bulk.bulk_job_start(
            action=BulkAction.TAG,
            params={"tag_id": tag.pk},
            contact_ids=list(range(1, bulk.MAX_SELECTION + 2)),
            actor=admin,
        )
    assert BulkJob.objects.count() == 0


def test_bulk_page_flow_and_permissions(staff_client, people, django_capture_on_commit_callbacks):
    viewer = staff_client(roles.VIEWER)
    response = viewer.post(
        reverse("contacts:bulk"),
        {"action": "delete", "scope": "selected", "contact": [people[0].pk]},
    )
    assert response.status_code == 403
    client = staff_client(roles.MARKETER)
    empty = client.post(
        reverse("contacts:bulk"),
        {"action": "tag", "scope": "selected", "new_tag": "Fair"},
        follow=True,
    )
    assert "nothing to do" in empty.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("contacts:bulk"),
            {
                "action": "tag",
                "scope": "selected",
                "new_tag": "Fair",
                "contact": [people[1].pk, people[2].pk],
            },
        )
    assert response.status_code == 302
    job = BulkJob.objects.get()
    assert client.get(response["Location"]).status_code == 200
    job.refresh_from_db()
    assert job.status == "succeeded" and Tag.objects.get().name == "Fair"
    # Another user's job is not found (staff see their own jobs).
    other = staff_client(roles.PHI_MARKETER)
    assert other.get(reverse("contacts:bulk_job", args=[job.uuid])).status_code == 404


def test_saved_views_are_per_user(staff_client, admin, people):
    tag = tags.tag_create(name="VIP", actor=admin)
    client = staff_client(roles.MARKETER)
    response = client.post(
        reverse("contacts:view_save"), {"name": "VIPs", "tag": tag.pk, "q": "secret"}
    )
    view = SavedView.objects.get()
    assert view.params == {"tag": str(tag.pk)}
    assert response["Location"].endswith(f"?view={view.uuid}")
    assert client.get(response["Location"]).status_code == 200
    other = staff_client(roles.PHI_MARKETER)
    assert other.get(reverse("contacts:index"), {"view": view.uuid}).status_code == 403
    assert other.post(reverse("contacts:view_delete", args=[view.uuid])).status_code == 404
    assert other.get(reverse("contacts:index"), {"view": "not-a-uuid"}).status_code == 403


def test_reindex_command_adds_name_tokens_to_old_rows(admin, people):
    ContactTokenSet.objects.update(tokens=[])  # as written before name tokens existed
    assert found("smith") == []
    call_command("contacts_reindex", batch=2, stdout=io.StringIO())
    assert found("smith") == ids(people[1], people[2])
    assert (
        AuditEvent.objects.filter(action="phi.access", details__purpose="tokens.rebuild").count()
        == 2
    )


def test_contact_page_shows_its_tags(staff_client, admin, people):
    tag = tags.tag_create(name="Volunteer", actor=admin)
    tags.contacts_tag(tag=tag, contact_ids=[people[0].pk], actor=admin)
    client = staff_client(roles.MARKETER)
    page = client.get(reverse("contacts:detail", args=[people[0].uuid])).content.decode()
    assert '<span class="tag">Volunteer</span>' in page
    other = client.get(reverse("contacts:detail", args=[people[1].uuid])).content.decode()
    assert "No tags." in other
