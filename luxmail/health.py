"""Health checks: ``/healthz`` for load balancers, ``/healthz?deep=1`` for operators.

The plain check answers ``ok`` as long as the web process serves requests. The deep
check also proves the rest of the machinery works end to end and answers JSON, with
HTTP 503 when any part fails:

* ``database`` — a ``SELECT 1``;
* ``cache`` — a write and read back through the shared cache;
* ``worker`` — a :func:`luxmail.tasks.healthcheck` task goes through the broker, a
  worker runs it and leaves its answer in the cache;
* ``beat`` — Celery beat sends :func:`luxmail.tasks.heartbeat` when it starts and then
  every ``LUXMAIL_HEARTBEAT_SECONDS``; a worker records when it ran.

Probes carry a random id, never data. At most one worker probe is in flight at a
time and a recent answer is reused, so hammering the endpoint cannot flood the queue.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from kombu.exceptions import OperationalError as BrokerError

from luxmail import jobs

PROBE_TIMEOUT_SECONDS = 10.0
# A worker answer younger than this is reused instead of sending another probe.
PROBE_REUSE_SECONDS = 15.0
_INFLIGHT_KEY = "health:probe-inflight"
_LAST_ANSWER_KEY = "health:probe-last-answer"
_HEARTBEAT_KEY = "health:beat-heartbeat"


def _probe_key(probe_id: str) -> str:
    return f"health:probe:{probe_id}"


def probe_answer(*, probe_id: str) -> None:
    """Called by the worker: record that the probe ``probe_id`` went through."""
    now = time.time()
    cache.set(_probe_key(probe_id), now, timeout=300)
    cache.set(_LAST_ANSWER_KEY, now, timeout=300)


def heartbeat_record() -> None:
    """Called by the worker for each beat heartbeat."""
    cache.set(_HEARTBEAT_KEY, time.time(), timeout=None)


def _database() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except DatabaseError:
        return False


def _cache() -> bool:
    key = f"health:cache:{uuid.uuid4().hex}"
    try:
        cache.set(key, 1, timeout=30)
        ok = cache.get(key) == 1
        cache.delete(key)
    except (OSError, ConnectionError):
        return False
    return ok


def _worker(timeout: float) -> str:
    last = cache.get(_LAST_ANSWER_KEY)
    if last is not None and time.time() - last < PROBE_REUSE_SECONDS:
        return "ok"
    probe_id = uuid.uuid4().hex
    if cache.add(_INFLIGHT_KEY, probe_id, timeout=timeout):
        try:
            jobs.HEALTHCHECK.delay(probe_id)
        except (BrokerError, OSError):
            cache.delete(_INFLIGHT_KEY)
            return "broker unreachable"
    else:
        # Another request sent a probe a moment ago: wait for that one.
        probe_id = cache.get(_INFLIGHT_KEY) or probe_id
    deadline = time.monotonic() + timeout
    while True:
        if cache.get(_probe_key(probe_id)) is not None:
            return "ok"
        if time.monotonic() >= deadline:
            return f"no worker answered within {timeout:g} s"
        time.sleep(0.1)


def _beat() -> str:
    beat = cache.get(_HEARTBEAT_KEY)
    if beat is None:
        return "no heartbeat recorded yet"
    age = time.time() - beat
    # Two missed beats (plus the time a busy worker may take) before we call it down.
    if age > 2 * settings.LUXMAIL_HEARTBEAT_SECONDS + 30:
        return f"last heartbeat {age:.0f} s ago"
    return "ok"


def deep_check(*, timeout: float = PROBE_TIMEOUT_SECONDS) -> dict[str, str]:
    """The state of every component: ``"ok"`` or a short reason (no data, no PHI)."""
    results = {
        "database": "ok" if _database() else "unreachable",
        "cache": "ok" if _cache() else "unreachable",
    }
    if results["cache"] != "ok":
        # Worker answers travel through the cache: nothing more can be known.
        results["worker"] = results["beat"] = "unknown (cache unreachable)"
        return results
    results["worker"] = _worker(timeout)
    results["beat"] = _beat()
    return results


@never_cache
def healthz(request: HttpRequest) -> HttpResponse:
    if request.GET.get("deep") not in ("1", "true", "yes"):
        return HttpResponse("ok", content_type="text/plain")
    results = deep_check()
    healthy = all(value == "ok" for value in results.values())
    body: dict[str, Any] = {"status": "ok" if healthy else "fail", "checks": results}
    return JsonResponse(body, status=200 if healthy else 503)
