"""API rate limits: one budget per API key, per signed-in user, per anonymous client IP.

Fixed windows counted with ``cache.incr`` (atomic on Redis, shared by every web
process), so a key's budget holds across workers. Rates come from settings
(``LUXMAIL_API_RATE_KEY``, ``LUXMAIL_API_RATE_ANON``: ``"<count>/<s|min|h|day>"``),
read on every request so a changed setting applies without a restart of the class.
"""

from __future__ import annotations

import math
import time
from typing import Any

from django.conf import settings
from django.core.cache import cache
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from luxmail import clients
from luxmail.models import ApiKey

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """``"1000/min"`` → ``(1000, 60)``. Raises ``ValueError`` for anything else."""
    count, _, period = rate.strip().partition("/")
    seconds = _PERIODS.get(period.strip()[:1].lower())
    if not count.strip().isdigit() or int(count) < 1 or seconds is None:
        raise ValueError(f"A rate is '<count>/<s|min|h|day>', e.g. '60/min' (got {rate!r}).")
    return int(count), seconds


def window_hit(scope: str, ident: str, rate: str) -> float | None:
    """Count one hit of ``ident`` in the fixed window of ``rate``; None while within
    the budget, else the seconds until the window ends. Shared with the public sign-up
    forms (``contacts/services/signup.py``)."""
    count, period = parse_rate(rate)
    now = time.time()
    window = int(now // period)
    key = f"api-throttle:{scope}:{ident}:{period}:{window}"
    cache.add(key, 0, timeout=period + 1)
    try:
        used = cache.incr(key)
    except ValueError:  # expired between add and incr: this request opens the window
        cache.set(key, 1, timeout=period + 1)
        used = 1
    if used <= count:
        return None
    return (window + 1) * period - now


class _WindowThrottle(BaseThrottle):
    scope = ""
    setting = ""

    def __init__(self) -> None:
        self._wait: float | None = None

    def ident(self, request: Request) -> str | None:
        raise NotImplementedError

    def allow_request(self, request: Request, view: Any) -> bool:
        ident = self.ident(request)
        if ident is None:
            return True
        self._wait = window_hit(self.scope, ident, getattr(settings, self.setting))
        return self._wait is None

    def wait(self) -> float | None:
        return None if self._wait is None else float(max(1, math.ceil(self._wait)))


class ApiKeyRateThrottle(_WindowThrottle):
    """``LUXMAIL_API_RATE_KEY`` per API key (and per signed-in staff member)."""

    scope = "key"
    setting = "LUXMAIL_API_RATE_KEY"

    def ident(self, request: Request) -> str | None:
        if isinstance(request.auth, ApiKey):
            return f"k{request.auth.pk}"
        user = request.user
        if user is not None and user.is_authenticated and getattr(user, "pk", None):
            return f"u{user.pk}"
        return None


class AnonRateThrottle(_WindowThrottle):
    """``LUXMAIL_API_RATE_ANON`` per client IP for requests without valid credentials —
    including every refused key (``luxmail.api.problems.exception_handler`` charges
    those, since DRF authenticates before it throttles)."""

    scope = "anon"
    setting = "LUXMAIL_API_RATE_ANON"

    def ident(self, request: Request) -> str | None:
        user = getattr(request, "_user", None)  # never re-run authentication from here
        if user is not None and user.is_authenticated:
            return None
        return f"ip{clients.client_ip(request.META)}"
