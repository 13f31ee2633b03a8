"""The ``make run`` demo data registry (``manage.py demo_setup``).

Each app may provide ``<app>/demo.py`` that registers an idempotent
``populate(*, actor)`` here. ``demo_setup`` loads those modules with Django's
``autodiscover_modules("demo")`` (as the admin loads ``admin.py``) and runs them in
``INSTALLED_APPS`` order: luxmail never names the apps above it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
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


class EmlWriter:
    """An aiosmtpd handler that writes each message it accepts to ``directory`` as .eml
    (the dev sink of ``make run``'s demo sends)."""

    def __init__(self, directory: Path):
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        name = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:12]}.eml"
        (self.directory / name).write_bytes(envelope.original_content or envelope.content)
        self.count += 1
        return "250 Message accepted for delivery"
