"""A real Celery worker killed in the middle of a journey step, then overlapping beat
ticks: every step runs exactly once and every contact gets each message once.

The journey is send A → send B → exit. The test holds a row lock on step B's campaign,
so the worker blocks *inside* step B's transaction for the first contact (its step run
and message rows written but not committed; step A already committed, its send not yet
enqueued). It is SIGKILLed there. Two new workers, each with its own beat (so ticks
overlap), take over once the lease expires: step A is not run again, step B runs once,
the lost enqueue of A's message is recovered by ``campaigns.recover_sending``, and the
SMTP sink receives exactly one A and one B per contact — also after further ticks.
"""

from __future__ import annotations

import email
import email.policy
import time
from collections import Counter

import psycopg
import pytest
from django.db import connection

from campaigns.journeys import tasks as journey_tasks
from campaigns.journeys import triggers
from campaigns.models import (
    EnrollmentState,
    JourneyEnrollment,
    JourneyStepCampaign,
    JourneyStepRun,
    Message,
    MessageState,
)
from campaigns.tests.factories import make_contacts, make_sender
from campaigns.tests.journey_factories import active_journey, make_template, send_step
from campaigns.tests.test_worker import kill, start_worker, wait_for

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.celery,
    pytest.mark.smtp,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]

CONTACTS = 40


def _subjects(sink) -> Counter[tuple[str, str]]:
    found: Counter[tuple[str, str]] = Counter()
    with sink.lock:
        received = list(sink.messages)
    for item in received:
        subject = str(email.message_from_bytes(item.data, policy=email.policy.default)["Subject"])
        for recipient in item.rcpt_tos:
            found[(recipient, subject)] += 1
    return found


def _waiting_on_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        )
        return bool(cursor.fetchone()[0])


def test_worker_killed_mid_step_and_overlapping_ticks_never_send_a_step_twice(
    postgres, sink, broker, admin, tmp_path, monkeypatch
):
    for name, value in {
        "LUXMAIL_JOURNEY_LEASE_SECONDS": "3",
        "LUXMAIL_JOURNEY_TICK_SECONDS": "1",
        "LUXMAIL_JOURNEY_BATCH": "15",
    }.items():
        monkeypatch.setenv(name, value)
    sender = make_sender(admin)
    first, second = make_template(admin, subject="Step A"), make_template(admin, subject="Step B")
    journey = active_journey(
        {
            "entry": "a",
            "steps": [
                send_step("a", first, sender, "b"),
                send_step("b", second, sender, "done"),
                {"key": "done", "kind": "exit"},
            ],
        },
        actor=admin,
    )
    ids = make_contacts(CONTACTS, prefix="kill")
    from django.utils import timezone

    triggers.enroll_ids(
        journey=journey,
        version=journey.current_version,
        contact_ids=ids,
        source="manual",
        now=timezone.now(),
    )
    campaign_b = JourneyStepCampaign.objects.get(step__key="b", step__version__journey=journey)
    db = connection.settings_dict
    blocker = psycopg.connect(
        host=db["HOST"], port=db["PORT"], user=db["USER"], dbname=db["NAME"], autocommit=False
    )
    victim = rescuers = None
    try:
        with blocker.cursor() as cursor:
            cursor.execute(
                "SELECT id FROM campaigns_campaign WHERE id = %s FOR UPDATE",
                [campaign_b.campaign_id],
            )
        victim = start_worker(sink.port, tmp_path, "victim")
        journey_tasks.advance.delay()
        wait_for(_waiting_on_lock, 60, "the worker to block inside step B", tmp_path)
        kill(victim)  # SIGKILL mid-transaction: PostgreSQL rolls the step back
        blocker.rollback()

        # Nothing of the interrupted step B survived; step A of that contact did.
        assert not JourneyStepRun.objects.filter(step__key="b").exists()
        assert JourneyStepRun.objects.filter(step__key="a").count() == 1
        assert sink.messages == [], "A's send was enqueued only after the batch"

        rescuers = [start_worker(sink.port, tmp_path, f"rescuer{n}", beat=True) for n in range(2)]
        wait_for(
            lambda: (
                not JourneyEnrollment.objects.filter(state=EnrollmentState.ACTIVE).exists()
                and not Message.objects.filter(
                    state__in=(MessageState.QUEUED, MessageState.SENDING, MessageState.DEFERRED)
                ).exists()
                and len(sink.messages) >= 2 * CONTACTS
            ),
            180,
            "every enrollment to finish and every message to be delivered",
            tmp_path,
        )
        # More overlapping ticks change nothing.
        for _ in range(3):
            journey_tasks.advance.delay()
        time.sleep(3)
    finally:
        blocker.close()
        for process in [victim, *(rescuers or [])]:
            if process is not None:
                kill(process)

    received = _subjects(sink)
    assert set(received.values()) == {1}, "a step's message arrived twice"
    emails = {f"kill{i}@example.test" for i in range(CONTACTS)}
    assert set(received) == {(e, s) for e in emails for s in ("Step A", "Step B")}
    runs = list(JourneyStepRun.objects.values_list("enrollment_id", "step__key"))
    assert len(runs) == len(set(runs)) == 3 * CONTACTS
    assert Message.objects.filter(state=MessageState.SENT).count() == 2 * CONTACTS
    assert set(JourneyEnrollment.objects.values_list("state", flat=True)) == {
        EnrollmentState.EXITED
    }
