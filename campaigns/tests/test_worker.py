"""Real Celery workers over a real Redis broker deliver every message exactly once.

The worker processes are ``celery -A luxmail worker`` subprocesses reading the test
database (these tests commit their data: ``transaction=True``). One test SIGKILLs a
worker mid-campaign and starts another (with beat for lease recovery): nothing may
arrive twice, nothing may stay queued, and only the few messages that were in flight
may end ``unknown``.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

from campaigns import services
from campaigns.models import Campaign, CampaignStatus, Message, MessageState
from campaigns.tests.factories import make_campaign, make_contacts

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.celery,
    pytest.mark.smtp,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]

ROOT = Path(__file__).resolve().parents[2]
CHUNK = 20
CONCURRENCY = 2


def start_worker(
    sink_port: int,
    tmp_path: Path,
    name: str,
    *,
    beat: bool = False,
    extra: dict[str, str] | None = None,
    default_leases: bool = False,
) -> Any:
    """``extra`` adds environment variables; ``default_leases`` keeps the lease and
    recovery settings at their production defaults."""
    db = connection.settings_dict
    env = {
        **os.environ,
        "LUXMAIL_ENV": "test",
        "LUXMAIL_CELERY_EAGER": "0",
        "DJANGO_SETTINGS_MODULE": "luxmail.settings",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CELERY_BROKER_URL": str(settings.CELERY_BROKER_URL),
        "LUXMAIL_REDIS_URL": str(settings.CELERY_BROKER_URL),
        "LUXMAIL_SMTP_HOST": "127.0.0.1",
        "LUXMAIL_SMTP_PORT": str(sink_port),
        "LUXMAIL_SMTP_SECURITY": "none",
        "LUXMAIL_SEND_CHUNK": str(CHUNK),
        "LUXMAIL_SEND_BATCH": "200",
        "LUXMAIL_SEND_CHAINS": str(CONCURRENCY),
        "LUXMAIL_SEND_LEASE_SECONDS": "6",
        "LUXMAIL_SEND_RECOVERY_SECONDS": "2",
        **(extra or {}),
    }
    if default_leases:
        for key in ("LUXMAIL_SEND_LEASE_SECONDS", "LUXMAIL_SEND_RECOVERY_SECONDS"):
            env.pop(key)
    command = [
        str(Path(sys.executable).parent / "celery"),
        "-A",
        "luxmail",
        "worker",
        "--hostname",
        f"{name}@%h",
        "--concurrency",
        str(CONCURRENCY),
        "--without-gossip",
        "--without-mingle",
        "--loglevel",
        "WARNING",
    ]
    if beat:
        command += ["--beat", "--schedule", str(tmp_path / f"beat-{name}")]
    log = open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115  # closed by the caller's kill
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def kill(process: Any) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def wait_for(predicate: Any, timeout: float, what: str, logs: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    tails = "\n".join(p.read_text(errors="replace")[-3000:] for p in logs.glob("*.log"))
    raise AssertionError(f"timed out waiting for {what}\n{tails}")


def test_2000_contacts_each_receive_exactly_one_message(postgres, sink, broker, admin, tmp_path):
    ids = make_contacts(2000)
    campaign = make_campaign(contact_ids=ids, actor=admin)
    worker = start_worker(sink.port, tmp_path, "w1")
    try:
        assert services.campaign_start(campaign=campaign, actor=admin) == 2000
        wait_for(
            lambda: Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.SENT,
            180,
            "the campaign to finish",
            tmp_path,
        )
    finally:
        kill(worker)
    received = Counter(sink.recipients())
    assert len(received) == 2000
    assert max(received.values()) == 1
    assert received.keys() == {f"p{i}@example.test" for i in range(2000)}
    assert Message.objects.filter(state=MessageState.SENT).count() == 2000


def test_sigkill_mid_campaign_never_sends_twice_and_loses_nothing(
    postgres, sink, broker, admin, tmp_path
):
    ids = make_contacts(2000)
    email_of = {cid: f"p{i}@example.test" for i, cid in enumerate(ids)}
    campaign = make_campaign(contact_ids=ids, actor=admin)
    first = start_worker(sink.port, tmp_path, "victim")
    second = None
    try:
        services.campaign_start(campaign=campaign, actor=admin)
        wait_for(lambda: len(sink.messages) >= 400, 120, "the first 400 messages", tmp_path)
        kill(first)  # SIGKILL the whole worker (main process and pool children)
        at_kill = len(sink.messages)
        assert at_kill < 2000, "the worker finished before it could be killed"
        second = start_worker(sink.port, tmp_path, "rescuer", beat=True)
        wait_for(
            lambda: Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.SENT,
            240,
            "the campaign to finish after the kill",
            tmp_path,
        )
    finally:
        kill(first)
        if second is not None:
            kill(second)

    received = Counter(sink.recipients())
    assert max(received.values()) == 1, "a message was delivered twice"
    states = dict(Message.objects.filter(campaign=campaign).values_list("contact_id", "state"))
    assert Counter(states.values()).keys() <= {MessageState.SENT, MessageState.UNKNOWN}
    unknown = [cid for cid, state in states.items() if state == MessageState.UNKNOWN]
    sent = [cid for cid, state in states.items() if state == MessageState.SENT]
    # Only what was in flight when the worker died: at most one chunk per pool process.
    assert len(unknown) <= CHUNK * CONCURRENCY
    for cid in sent:
        assert received[email_of[cid]] == 1
    # Every recipient got the message once, except unknown ones, which got it at most once.
    assert set(received) <= set(email_of.values())
    missing = {email_of[cid] for cid in ids} - set(received)
    assert missing <= {email_of[cid] for cid in unknown}
    logging.getLogger(__name__).warning(
        "killed after %d deliveries; %d sent, %d unknown (%d of them not delivered)",
        at_kill,
        len(sent),
        len(unknown),
        len(missing),
    )
