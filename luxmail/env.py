"""Typed access to environment variables for settings.

Settings read configuration only from the environment (DESIGN.md §3). Outside the
embedded ``dev`` mode (``make run``) and the test suite, a missing secret is an
``ImproperlyConfigured`` error that names the variable, so a deployment never starts
with a guessable default.

Every variable ``NAME`` may instead be given as ``NAME_FILE=/path/to/file`` (the file
holds the value), so secrets can come from Docker/Kubernetes secrets or systemd
credentials instead of the process environment.
"""

from __future__ import annotations

import os

from django.core.exceptions import ImproperlyConfigured

MODES = ("production", "dev", "test")


def mode() -> str:
    value = os.environ.get("LUXMAIL_ENV", "production").strip().lower()
    if value not in MODES:
        raise ImproperlyConfigured(f"LUXMAIL_ENV must be one of {', '.join(MODES)}, not {value!r}.")
    return value


def _from_file(name: str) -> str | None:
    """``NAME_FILE=/path`` supplies ``NAME`` from a file (Docker/Kubernetes secrets,
    systemd credentials), so keys need not sit in the process environment."""
    path = os.environ.get(f"{name}_FILE", "").strip()
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip()
    except OSError as error:
        raise ImproperlyConfigured(
            f"{name}_FILE names {path!r}, which cannot be read ({error.strerror})."
        ) from None


def get(name: str, default: str | None = None) -> str | None:
    """``name`` from the environment (or ``name_FILE``), stripped; blank means unset."""
    if os.environ.get(name, "").strip() and os.environ.get(f"{name}_FILE", "").strip():
        raise ImproperlyConfigured(f"Set either {name} or {name}_FILE, not both.")
    value = os.environ.get(name, "").strip() or (_from_file(name) or "").strip()
    return value or default


def require(name: str, *, fallback: str | None = None) -> str:
    """Return ``name`` from the environment.

    ``fallback`` is used only in the dev and test modes; in production the variable
    must be set, and its absence raises ``ImproperlyConfigured`` naming it.
    """
    value = get(name)
    if value is not None:
        return value
    if mode() != "production" and fallback is not None:
        return fallback
    raise ImproperlyConfigured(
        f"The environment variable {name} is required "
        f"(see docs/operations.md). Set it (or {name}_FILE) before starting LuxMail."
    )


def boolean(name: str, default: bool = False) -> bool:
    value = get(name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), not {value!r}.")


def integer(name: str, default: int) -> int:
    value = get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {value!r}.") from None


def listing(name: str, default: list[str] | None = None) -> list[str]:
    value = get(name)
    if value is None:
        return list(default or [])
    return [item.strip() for item in value.split(",") if item.strip()]
