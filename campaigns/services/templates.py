"""Template writes and previews, and the compliance footer every message carries."""

from __future__ import annotations

import re
from typing import Any, Literal

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest

from campaigns.content import fields as template_fields
from campaigns.content import footer, htmlmail, templating
from campaigns.content.context import SAMPLE_CONTEXT, recipients
from campaigns.models import (
    EmailTemplate,
)
from campaigns.services import approvals
from campaigns.services.errors import CampaignError, _user
from luxmail import audit, crypto, org
from luxmail.actors import Actor, actor_has_perm

# --- templates -------------------------------------------------------------------------


def _apply_template(
    template: EmailTemplate, *, subject: str, html: str, text: str, require_footer: bool
) -> None:
    checked = templating.validate(subject=subject, html=html, text=text)
    # The organization's footer block is locked: altered is always refused; missing is
    # refused for visual-editor and library templates and for any template that had it.
    state = footer.footer_check(html)
    if state is footer.FooterState.ALTERED or (
        state is footer.FooterState.MISSING and (require_footer or template.has_locked_footer)
    ):
        footer.footer_require(html)
    template.subject = subject.strip()
    template.html = html
    template.text = text
    template.phi_bearing = checked.phi_bearing
    template.uses_unsubscribe = checked.uses_unsubscribe
    template.has_locked_footer = state is footer.FooterState.PRESENT


def template_create(
    *,
    name: str,
    subject: str,
    html: str,
    text: str = "",
    actor: Actor,
    request: HttpRequest | None = None,
    editor_project: dict[str, Any] | None = None,
    require_footer: bool = False,
) -> EmailTemplate:
    """Validate and store a template. Raises ``TemplateValidationError`` / ``CampaignError``.

    Marks it PHI-bearing when it uses any ``phi.*`` name. ``editor_project`` is the visual
    editor's design (stored beside the HTML, never rendered). The organization's locked
    footer may never be altered, and must be present when ``require_footer`` (the visual
    editor and the library): ``footer.FooterError`` otherwise. Audits ``template.create``.
    """
    name = " ".join(name.split())
    if not name:
        raise CampaignError("A template needs a name.")
    with transaction.atomic():
        if EmailTemplate.objects.filter(name=name).exists():
            raise CampaignError(f"A template named '{name}' already exists.")
        template = EmailTemplate(
            name=name,
            created_by=_user(actor),
            updated_by=_user(actor),
            editor_project=editor_project,
        )
        _apply_template(
            template, subject=subject, html=html, text=text, require_footer=require_footer
        )
        template.save()
        audit.record(
            "template.create",
            actor=actor,
            request=request,
            target=template,
            details={
                "phi_bearing": template.phi_bearing,
                "locked_footer": template.has_locked_footer,
            },
        )
    return template


def template_update(
    *,
    template: EmailTemplate,
    actor: Actor,
    name: str | None = None,
    subject: str | None = None,
    html: str | None = None,
    text: str | None = None,
    request: HttpRequest | None = None,
    editor_project: dict[str, Any] | Literal["keep"] | None = "keep",
    require_footer: bool = False,
) -> EmailTemplate:
    """Validate and save changes (a new version). Campaigns already sending keep their
    frozen copy. ``editor_project``: the visual editor's new design, ``None`` when the
    HTML was edited as code (the design no longer matches it), ``"keep"`` to leave it.

    A template that carries the organization's locked footer keeps it: saving it
    altered or without it raises ``footer.FooterError`` (as does a missing footer when
    ``require_footer``). Audits ``template.update``."""
    with transaction.atomic():
        template = EmailTemplate.objects.select_for_update().get(pk=template.pk)
        if name is not None:
            name = " ".join(name.split())
            if not name:
                raise CampaignError("A template needs a name.")
            if EmailTemplate.objects.filter(name=name).exclude(pk=template.pk).exists():
                raise CampaignError(f"A template named '{name}' already exists.")
            template.name = name
        _apply_template(
            template,
            subject=template.subject if subject is None else subject,
            html=template.html if html is None else html,
            text=template.text if text is None else text,
            require_footer=require_footer,
        )
        if editor_project != "keep":
            template.editor_project = editor_project
        template.version += 1
        template.updated_by = _user(actor)
        template.save()
        audit.record(
            "template.update",
            actor=actor,
            request=request,
            target=template,
            details={"version": template.version, "phi_bearing": template.phi_bearing},
        )
        approvals.approvals_recheck_using(template=template, actor=actor)
    return template


def template_preview(
    *,
    subject: str,
    html: str,
    text: str,
    actor: Actor,
    contact_id: int | None = None,
    request: HttpRequest | None = None,
    missing_fields: bool = False,
) -> templating.Rendered:
    """Render a template against sample data, or a real contact (audited PHI read).

    ``missing_fields`` empties every contact/PHI field the template reads first (the
    preview "as a contact with missing fields"). When the recipient lacks a field the
    template prints unguarded, :class:`CampaignError` names the fields: the send
    pipeline would skip that contact (``campaigns/content/fields.py``).

    A real contact's data needs ``luxmail.view_phi`` when the template is PHI-bearing
    or reads any contact field; previews of sample data need nothing. Raises
    ``TemplateError`` for template problems and :class:`CampaignError` when refused.
    """

    checked = templating.validate(subject=subject, html=html, text=text)
    if contact_id is None:
        context = dict(SAMPLE_CONTEXT)
    else:
        if not actor_has_perm(actor, "luxmail.view_phi"):
            raise CampaignError(
                "Previewing with a real contact shows their data; only PHI-permitted roles "
                "may do that. Preview with sample data instead."
            )
        access = crypto.phi_access(
            actor=actor,
            purpose="template.preview",
            request=request,
            details={"contact_id": contact_id, "phi_bearing": checked.phi_bearing},
        )
        found = recipients([contact_id], fields=checked.fields, access=access)
        if contact_id not in found:
            raise CampaignError("That contact does not exist.")
        context = found[contact_id].context
    if missing_fields:
        context = template_fields.blank_context(
            context, template_fields.referenced_fields(subject=subject, html=html, text=text)
        )
    blank = template_fields.missing(
        context, template_fields.required_fields(subject=subject, html=html, text=text)
    )
    if blank:
        raise CampaignError(
            "This contact would be skipped and sent nothing: "
            + template_fields.skip_reason(blank).partition("not sent, ")[2]
            + ". Give those fields a default(…) or an {% if %} to send them anyway."
        )
    org_row = _org()
    sources = _with_footer(subject=subject, html=html, text=text)
    compiled = templating.CompiledTemplate(**sources)
    base = f"{settings.LUXMAIL_BASE_URL}/u/preview/"
    rendered = compiled.render(
        {
            **context,
            "org": {
                "name": org_row.name,
                "postal_address": org_row.postal_address,
                "footer_text": org_row.footer_text,
            },
            "unsubscribe_url": base,
            "preferences_url": base + "preferences/",
        }
    )
    rendered.html = htmlmail.prepare_html(rendered.html)
    return rendered


def _org() -> Any:

    return org.get_settings()


_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)
_HTML_FOOTER = (
    '\n<p style="font-size:12px;color:#666666;margin-top:24px">'
    '<a href="{{ unsubscribe_url }}">Unsubscribe</a> · '
    '<a href="{{ preferences_url }}">Email preferences</a></p>\n'
)
_ADDRESS_FOOTER = (
    '\n<p style="font-size:12px;color:#666666">{{ org.name }} · {{ org.postal_address }}</p>\n'
)


def _with_footer(*, subject: str, html: str, text: str) -> dict[str, str]:
    """The sources as sent: unsubscribe link and postal address appended when missing
    (CAN-SPAM), and a text part generated from the HTML when there is none."""
    names = templating.validate(subject=subject, html=html, text=text)
    addition = ""
    if not names.uses_unsubscribe:
        addition += _HTML_FOOTER
    if "org.postal_address" not in html.replace(" ", ""):
        addition += _ADDRESS_FOOTER
    if addition:
        ends = list(_BODY_END.finditer(html))
        if ends:
            at = ends[-1].start()
            html = html[:at] + addition + html[at:]
        else:
            html += addition
    if not text.strip():
        text = htmlmail.html_to_text(html)
    else:
        if "unsubscribe_url" not in text:
            text += "\n\nUnsubscribe: {{ unsubscribe_url }}\nPreferences: {{ preferences_url }}\n"
        if "org.postal_address" not in text.replace(" ", ""):
            text += "\n{{ org.name }}, {{ org.postal_address }}\n"
    return {"subject": subject.strip(), "html": html, "text": text}
