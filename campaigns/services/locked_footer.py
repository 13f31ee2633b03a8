"""Marketing needs the organization's locked footer (issue 19 item 2).

A campaign that is not transactional (consent and unsubscribe apply), and a journey
whose consent is ``marketing``, may only send a template whose ``has_locked_footer``
is set. :func:`footer_require_for_marketing` is the guard the schedule and start
services and the pre-send check share; :func:`template_add_footer` is the one-click
fix, which re-saves the template through the normal save path (validated, versioned,
audited, approvals rechecked).
"""

from __future__ import annotations

from django.http import HttpRequest

from campaigns.content import footer
from campaigns.models import Campaign, EmailTemplate
from campaigns.services.errors import CampaignError
from campaigns.services.templates import template_update
from luxmail.actors import Actor

MISSING_FOR_MARKETING = (
    "The template '{name}' has no organization footer (postal address, unsubscribe and "
    "preferences links, legal text), so it cannot be used for marketing. Use “Add the "
    "organization footer” on the template, or open it in the visual editor."
)


class LockedFooterMissing(CampaignError):
    """A marketing send refused because its template lacks the locked footer."""

    code = "locked-footer-missing"


def campaign_is_marketing(campaign: Campaign) -> bool:
    """Transactional messages (``POST /api/v1/messages/``) are the only non-marketing
    campaigns: every other campaign needs consent and carries an unsubscribe link."""
    return not campaign.transactional


def template_usable_for_marketing(template: EmailTemplate) -> bool:
    return template.has_locked_footer


def missing_message(template: EmailTemplate) -> str:
    return MISSING_FOR_MARKETING.format(name=template.name)


def footer_require_for_marketing(campaign: Campaign) -> None:
    """Raise :class:`LockedFooterMissing` for a marketing campaign whose template lacks
    the locked footer. No template, or a transactional campaign: nothing to say here."""
    template = campaign.template
    if template is None or not campaign_is_marketing(campaign):
        return
    if not template_usable_for_marketing(template):
        raise LockedFooterMissing(missing_message(template))


def template_add_footer(
    *, template: EmailTemplate, actor: Actor, request: HttpRequest | None = None
) -> EmailTemplate:
    """Append the organization's locked footer to the template's HTML and save it (a new
    version, audited ``template.update``). A template that already carries it is
    returned unchanged. Raises ``TemplateValidationError`` (e.g. the footer would take
    the template over the size limit) and ``CampaignError`` like any save."""
    if template.has_locked_footer:
        return template
    html = footer.footer_insert(template.html)
    # The visual editor's design no longer matches HTML changed here: drop it so the
    # editor rebuilds from the HTML, as after a code edit.
    return template_update(
        template=template,
        actor=actor,
        html=html,
        request=request,
        editor_project=None,
        require_footer=True,
    )
