"""Tracking durability against real redis-server processes started by the tests.

* The start-up check (``reporting.buffer.durability_problem``): a Redis with
  ``appendonly yes`` + ``appendfsync always`` passes; any other persistence makes
  production refuse to start with a clear message and dev warn loudly.
* A Redis SIGKILLed in the middle of a burst of hits: every hit answered 200/302 is
  stored after the restart and the ingest.
* The ingester keeps storing what is in PostgreSQL while Redis is down (the proxy-range
  cache lives in Redis), and catches up on the stream once Redis is back.
"""

from __future__ import annotations

import logging
import threading

import pytest
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from luxmail.testing import RedisServer, require
from reporting import buffer, selectors
from reporting.checks import tracking_durability
from reporting.models import Event, PendingEvent
from reporting.tests.helpers import (
    BROWSER,
    built_html,
    click_path,
    drain,
    hit,
    mark_sent,
    open_path,
    started_campaign,
)

pytestmark = [pytest.mark.redis]


@pytest.fixture
def redis_server(tmp_path):
    """``redis_server(**options)`` → a started real redis-server, stopped after the test."""
    import shutil

    require(shutil.which("redis-server") is not None, "redis-server is not installed")
    started: list[RedisServer] = []

    def factory(**options: str) -> RedisServer:
        server = RedisServer(tmp_path / f"redis{len(started)}", **options).start()
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()


def _use(settings, server: RedisServer) -> None:
    """Point tracking (stream and shared cache) at ``server``."""
    settings.REDIS_URL = server.url(0)
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": server.url(0),
            "KEY_PREFIX": "luxmail",
            "OPTIONS": {"socket_timeout": 0.5, "socket_connect_timeout": 0.5},
        }
    }
    buffer.reset()


# --- the start-up check --------------------------------------------------------------------


@pytest.mark.django_db
def test_check_passes_on_redis_with_appendfsync_always(settings, redis_server):
    _use(settings, redis_server(appendonly="yes", appendfsync="always"))
    settings.PRODUCTION = True
    assert buffer.durability_problem() is None
    assert tracking_durability() == []
    buffer.enforce_durability()  # does not raise
    assert not [
        m
        for m in checks.run_checks(include_deployment_checks=True, tags=["luxmail"])
        if m.id and m.id.startswith("reporting.")
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("options", "shown"),
    [
        ({"appendonly": "no"}, "appendonly no, appendfsync everysec"),
        ({"appendonly": "yes", "appendfsync": "everysec"}, "appendonly yes, appendfsync everysec"),
    ],
)
def test_production_refuses_redis_that_can_lose_hits(settings, redis_server, options, shown):
    server = redis_server(**options)
    _use(settings, server)
    settings.PRODUCTION = True
    with pytest.raises(ImproperlyConfigured) as refused:
        buffer.enforce_durability()
    message = str(refused.value)
    assert f"127.0.0.1:{server.port}/0 runs {shown}" in message
    assert "appendonly yes and appendfsync always" in message
    assert "LUXMAIL_TRACKING_DURABILITY=postgres" in message  # the documented escape
    [error] = tracking_durability()
    assert error.level == checks.ERROR and error.id == "reporting.E001"
    # check --deploy reports it too
    found = checks.run_checks(include_deployment_checks=True, tags=["luxmail"])
    assert any(m.id == "reporting.E001" for m in found)


@pytest.mark.django_db
def test_dev_warns_loudly_about_redis_that_can_lose_hits(settings, redis_server, caplog):
    _use(settings, redis_server(appendonly="no"))
    settings.PRODUCTION = False
    with caplog.at_level(logging.WARNING, logger="reporting.buffer"):
        buffer.enforce_durability()
    assert "TRACKING EVENTS CAN BE LOST" in caplog.text
    assert "appendonly no" in caplog.text
    [warning] = tracking_durability()
    assert warning.level == checks.WARNING


@pytest.mark.django_db
def test_redis_that_refuses_config_cannot_be_verified(settings, redis_server):
    _use(
        settings,
        redis_server(
            appendonly="yes", appendfsync="always", rename_command="CONFIG LUXMAIL_HIDDEN_CONFIG"
        ),
    )
    settings.PRODUCTION = True
    with pytest.raises(ImproperlyConfigured, match="refuses CONFIG GET"):
        buffer.enforce_durability()
    # The escape for managed Redis: the operator vouches for its persistence.
    settings.LUXMAIL_TRACKING_DURABILITY = "redis-trusted"
    buffer.enforce_durability()


@pytest.mark.django_db
def test_unknown_durability_mode_is_refused(settings):
    settings.LUXMAIL_TRACKING_DURABILITY = "fast"
    settings.PRODUCTION = True
    with pytest.raises(ImproperlyConfigured, match="is not one of"):
        buffer.enforce_durability()


@pytest.mark.django_db(transaction=True)
def test_postgres_mode_writes_every_hit_to_the_write_ahead_table(
    client, settings, redis_server, tracking_buffer
):
    require(connection.vendor == "postgresql", "needs PostgreSQL")
    server = redis_server(appendonly="no")
    _use(settings, server)
    settings.LUXMAIL_TRACKING_DURABILITY = "postgres"
    settings.PRODUCTION = True
    buffer.enforce_durability()  # Redis persistence does not matter in this mode
    campaign, ids = started_campaign(2)
    mark_sent(ids)
    built_html(campaign, ids[0])
    for message_id in ids:
        assert hit(client, open_path(message_id, campaign.pk)).status_code == 200
    assert PendingEvent.objects.count() == 2
    assert buffer.stream_length() == 0


# --- a Redis crash in the middle of a burst -------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
@pytest.mark.slow
def test_sigkill_of_redis_during_a_burst_loses_no_accepted_hit(
    client, settings, redis_server, tracking_buffer
):
    require(connection.vendor == "postgresql", "needs PostgreSQL")
    server = redis_server(appendonly="yes", appendfsync="always")
    _use(settings, server)
    settings.PRODUCTION = True
    buffer.enforce_durability()
    campaign, ids = started_campaign(20)
    mark_sent(ids)
    built_html(campaign, ids[0])
    paths = [open_path(m, campaign.pk) for m in ids] + [click_path(m, campaign.pk, 1) for m in ids]
    accepted = 0
    killed = threading.Event()
    total = 600
    for number in range(total):
        if number == total // 3:
            # From another thread, while requests are in flight on this one.
            threading.Timer(0.01, lambda: (server.kill(), killed.set())).start()
        if number == 2 * total // 3:
            assert killed.wait(10)
            server.start()  # same directory: it reloads its append-only file
            buffer.reset()  # forget the failure window so hits go to Redis again
        response = hit(client, paths[number % len(paths)], agent=BROWSER)
        if response.status_code in (200, 302):
            accepted += 1
    assert accepted == total
    # Hits went to Redis, to the write-ahead table while Redis was dead, and to Redis again.
    assert PendingEvent.objects.exists()
    assert buffer.stream_length()
    report = drain()
    assert report.dropped == 0
    assert Event.objects.filter(campaign_id=campaign.pk).count() == accepted
    assert PendingEvent.objects.count() == 0 and buffer.stream_length() == 0


# --- the ingester while Redis is down ---------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_ingester_stores_table_entries_while_redis_is_down_and_catches_up(
    client, settings, redis_server, tracking_buffer
):
    require(connection.vendor == "postgresql", "needs PostgreSQL")
    server = redis_server(appendonly="yes", appendfsync="always")
    _use(settings, server)
    campaign, ids = started_campaign(4)
    mark_sent(ids)
    built_html(campaign, ids[0])
    for message_id in ids[:2]:  # into the Redis stream
        assert hit(client, open_path(message_id, campaign.pk), agent=BROWSER).status_code == 200
    assert buffer.stream_length() == 2
    server.stop()
    buffer.reset()
    for message_id in ids[2:]:  # Redis is down: into the write-ahead table
        assert hit(client, open_path(message_id, campaign.pk), agent=BROWSER).status_code == 200
    assert PendingEvent.objects.count() == 2
    # A fresh process (or one whose ranges changed) asks the shared cache for the range
    # version first; that must not stop the ingester.
    selectors.RANGE_CACHE.expire()
    report = drain()
    assert report.stored == 2
    assert PendingEvent.objects.count() == 0
    assert set(Event.objects.values_list("message_id", flat=True)) == set(ids[2:])

    server.start()  # back, with the two entries it had persisted
    buffer.reset()
    report = drain()
    assert report.stored == 2
    assert set(Event.objects.values_list("message_id", flat=True)) == set(ids)
    assert buffer.stream_length() == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
@pytest.mark.slow
def test_ingest_command_keeps_going_when_the_redis_broker_is_down(
    client, settings, redis_server, tracking_buffer, make_user, tmp_path
):
    """The real command in its own process, with Celery's broker on a stopped Redis: the
    opened webhooks cannot be enqueued, every batch is still stored."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from reporting import services
    from reporting.models import WebhookDelivery

    require(connection.vendor == "postgresql", "needs PostgreSQL shared with the command")
    services.webhook_endpoint_create(
        name="CDP", url="https://cdp.example/hook", event_types=["opened"], actor=make_user()
    )
    server = redis_server(appendonly="yes", appendfsync="always")
    _use(settings, server)
    settings.LUXMAIL_TRACKING_DURABILITY = "postgres"  # every hit into the table
    campaign, ids = started_campaign(6)
    mark_sent(ids)
    built_html(campaign, ids[0])
    for message_id in ids:
        assert hit(client, open_path(message_id, campaign.pk), agent=BROWSER).status_code == 200
    assert PendingEvent.objects.count() == 6
    server.stop()
    db = connection.settings_dict
    env = {
        **os.environ,
        "LUXMAIL_ENV": "test",
        "DJANGO_SETTINGS_MODULE": "luxmail.test_settings",
        "LUXMAIL_CELERY_EAGER": "0",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}",
        "LUXMAIL_REDIS_URL": server.url(0),
        "CELERY_BROKER_URL": server.url(0),
        "LUXMAIL_VAR_DIR": str(tmp_path),
    }
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "manage.py", "ingest_tracking_events", "--batch", "2"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "stored 6 events" in result.stdout
    assert Event.objects.filter(campaign_id=campaign.pk).count() == 6
    assert PendingEvent.objects.count() == 0
    # Queued as rows; the dispatch sweep enqueues them once the broker is back.
    assert WebhookDelivery.objects.filter(event_type="opened").count() == 6
