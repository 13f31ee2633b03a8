"""The contact page's "Bounces and complaints" section (registered in contacts.panels)."""

from __future__ import annotations

from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils.safestring import SafeString

from campaigns.sending import health
from contacts.models import Contact


def bounces_panel(contact: Contact, request: HttpRequest) -> SafeString | str:
    """Each bounce with its reason, scope, rule and redacted diagnostic (no addresses)."""
    if not request.user.has_perm("campaigns.view_campaign"):
        return ""
    events = list(health.bounce_events(contact_id=contact.pk)[:50])
    return render_to_string(
        "campaigns/_contact_bounces.html", {"events": events, "contact": contact}, request=request
    )
