"""/healthz for load balancers and /healthz?deep=1 for operators (luxmail/health.py)."""

import time

import pytest
from django.core.cache import cache

from luxmail import health, tasks

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


def test_plain_check_is_public_and_tiny(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.content == b"ok"
    assert "no-cache" in response["Cache-Control"]


def test_deep_check_reports_every_component(client, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True  # the worker answers inline here
    tasks.heartbeat.delay()
    response = client.get("/healthz?deep=1")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "cache": "ok", "worker": "ok", "beat": "ok"},
    }


def test_deep_check_fails_without_a_beat_heartbeat(client):
    response = client.get("/healthz?deep=1")
    assert response.status_code == 503
    assert response.json()["checks"]["beat"] == "no heartbeat recorded yet"


def test_a_stale_heartbeat_fails(client, settings):
    settings.LUXMAIL_HEARTBEAT_SECONDS = 1
    cache.set("health:beat-heartbeat", time.time() - 120, timeout=None)
    response = client.get("/healthz?deep=1")
    assert response.status_code == 503
    assert response.json()["checks"]["beat"].startswith("last heartbeat")


def test_without_a_worker_the_probe_times_out(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = "memory://"
    from luxmail.celery import app

    original = app.conf.broker_url
    app.conf.broker_url = "memory://"  # a broker no worker listens on
    try:
        result = health.deep_check(timeout=0.5)
    finally:
        app.conf.broker_url = original
    assert result["worker"] == "no worker answered within 0.5 s"


def test_recent_answers_are_reused_so_probes_cannot_flood_the_queue(settings, monkeypatch):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    sent = []
    original = tasks.healthcheck.delay

    def counting_delay(probe_id):
        sent.append(probe_id)
        return original(probe_id)

    monkeypatch.setattr(tasks.healthcheck, "delay", counting_delay)
    for _ in range(5):
        assert health.deep_check()["worker"] == "ok"
    assert len(sent) == 1
