"""Demo data for the campaign review page (``make run``): the organization's seed list
for test sends, and a draft campaign with a preheader whose pre-send check has run — a
dead link, an image without alt text, and the demo domain's missing DNS records, which
the demo Admin overrode with a note. Idempotent; called from ``campaigns/demo.py``."""

from __future__ import annotations

from campaigns import services
from campaigns.content import footer
from campaigns.models import Campaign, EmailTemplate, PresendOverride, SenderIdentity
from contacts.models import ContactList
from luxmail import org
from luxmail.actors import Actor

SEED_LIST = "qa-team@demo-health.example\nmarketing-lead@demo-health.example"
TEMPLATE = "Winter flu clinics"
CAMPAIGN = "Winter flu clinics (pre-send check)"
PREHEADER = "Walk-in flu shots at all three clinics, evenings and Saturdays."

HTML = """<html><body>
<h1 style="color:#1b4d7a">Flu shots, {{ contact.first_name|default("neighbour") }}</h1>
<img src="https://demo-health.example/img/clinic.png" width="560">
<p>Our winter flu clinics are open on weekday evenings and Saturday mornings at all three
locations. No appointment is needed; bring your insurance card if you have one.</p>
<p><a href="https://demo-health.example/flu">Find a flu clinic</a> ·
<a href="https://demo-health.example/old-flu-page-2019">Last year's schedule</a></p>
</body></html>
"""


def populate(*, actor: Actor, sender: SenderIdentity) -> None:
    if not org.get_settings().seed_addresses:
        org.org_settings_update(actor=actor, seed_addresses=SEED_LIST)
    audience = ContactList.objects.filter(name="Patient newsletter").first()
    if audience is None or Campaign.objects.filter(name=CAMPAIGN).exists():
        return
    template = EmailTemplate.objects.filter(name=TEMPLATE).first() or services.template_create(
        name=TEMPLATE,
        subject="{{ contact.first_name|default('Hello') }}, walk-in flu shots this winter",
        html=footer.footer_insert(HTML),
        actor=actor,
    )
    campaign = services.campaign_create(
        name=CAMPAIGN,
        actor=actor,
        template=template,
        sender=sender,
        lists=[audience],
        preheader=PREHEADER,
    )
    # Runs the check as the review page does: DNS now, the links on the worker.
    check = services.presend_check(campaign=campaign)
    if check.failing and not PresendOverride.objects.filter(campaign=campaign).exists():
        services.presend_override(
            campaign=campaign,
            actor=actor,
            note="Demo domain: its DNS records are published on the real domain at go-live.",
        )
