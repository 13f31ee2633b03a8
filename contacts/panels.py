"""Sections that higher apps add to a contact's page (contacts never imports them).

An app registers a function from its ``AppConfig.ready()``: given the contact and the
request, it returns rendered HTML (safe, from its own template) or ``""``. Campaigns
registers the contact's bounces and complaints with their reasons and evidence.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest
from django.utils.safestring import SafeString

from contacts.models import Contact

Panel = Callable[[Contact, HttpRequest], SafeString | str]
_panels: list[Panel] = []


def register(panel: Panel) -> None:
    if panel not in _panels:
        _panels.append(panel)


def rendered(*, contact: Contact, request: HttpRequest) -> list[SafeString | str]:
    return [html for panel in _panels if (html := panel(contact, request))]
