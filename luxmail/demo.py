"""The ``make run`` demo data registry (``manage.py demo_setup``).

Each app may provide ``<app>/demo.py`` that registers an idempotent
``populate(*, actor)`` here. ``demo_setup`` loads those modules with Django's
``autodiscover_modules("demo")`` (as the admin loads ``admin.py``) and runs them in
``INSTALLED_APPS`` order: luxmail never names the apps above it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Populate = Callable[..., Any]

_populators: list[Populate] = []


def register(populate: Populate) -> Populate:
    """Register an app's demo ``populate(*, actor)``; usable as a decorator."""
    if populate not in _populators:
        _populators.append(populate)
    return populate


def populators() -> list[Populate]:
    return list(_populators)
