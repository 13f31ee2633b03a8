"""Checks the web process runs once at start-up (luxmail/wsgi.py).

An app above luxmail registers a check from its ``AppConfig.ready()``; the WSGI entry
point runs them after Django is set up, so luxmail never imports the apps above it.
A check raises to refuse to serve (production) or warns (dev).
"""

from __future__ import annotations

from collections.abc import Callable

_web_checks: list[Callable[[], object]] = []


def register_web_check(check: Callable[[], object]) -> None:
    if check not in _web_checks:
        _web_checks.append(check)


def run_web_checks() -> None:
    for check in _web_checks:
        check()
