"""Filter sources other apps plug into the contacts page (issue 20).

contacts cannot import campaigns (import layers), yet staff want "contacts with a bounce
of reason X". The campaigns app registers a :class:`BounceFilterSource` at start-up
(``campaigns/contact_filters.py``): the reasons it knows and, for one reason, a ``Q`` on
``Contact`` (an ``EXISTS`` over its bounce events). Without a source the filter is
hidden and a bounce reason in a URL or saved view selects nobody.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db.models import Q


@dataclass(frozen=True)
class BounceFilterSource:
    choices: Callable[[], list[tuple[str, str]]]
    contacts_q: Callable[[str], Q]


_bounce: list[BounceFilterSource] = []


def register_bounce_source(source: BounceFilterSource) -> None:
    """Set the bounce-reason filter's source (the last registration wins)."""
    _bounce[:] = [source]


def bounce_source() -> BounceFilterSource | None:
    return _bounce[0] if _bounce else None


def bounce_reason_choices() -> list[tuple[str, str]]:
    source = bounce_source()
    return source.choices() if source else []


def bounce_reason_q(reason: str) -> Q:
    """Contacts with at least one bounce of ``reason``; nobody for an unknown reason."""
    source = bounce_source()
    if source is None or reason not in {value for value, _ in source.choices()}:
        return Q(pk__in=[])
    return source.contacts_q(reason)
