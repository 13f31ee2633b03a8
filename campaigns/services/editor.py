"""The visual editor's writes: templates from the library and saved reusable blocks."""

from __future__ import annotations

from django.db import transaction
from django.http import HttpRequest

from campaigns.content import editor, library
from campaigns.models import EditorBlock, EmailTemplate
from campaigns.services.errors import CampaignError, _user
from campaigns.services.templates import template_create
from luxmail import audit
from luxmail.actors import Actor

MAX_EDITOR_BLOCKS = 200


def template_from_library(
    *, slug: str, name: str, actor: Actor, request: HttpRequest | None = None
) -> EmailTemplate:
    """Create a template from the library's ``slug`` under ``name``, with its locked footer.

    Raises :class:`CampaignError` for an unknown starting template or a taken name.
    Audits ``template.create`` (through :func:`template_create`).
    """
    entry = library.library_template(slug)
    if entry is None:
        raise CampaignError("That starting template does not exist.")
    return template_create(
        name=name or entry.name,
        subject=entry.subject,
        html=entry.html,
        actor=actor,
        request=request,
        require_footer=True,
    )


def editor_block_create(
    *, name: str, html: str, actor: Actor, request: HttpRequest | None = None
) -> EditorBlock:
    """Save a reusable block for every editor of the organization.

    The HTML is checked like a template (sandbox syntax and names, 64 KiB) and may not
    hold the locked footer. Raises ``TemplateValidationError`` or :class:`CampaignError`
    (name taken, too many blocks). Audits ``template.block_create``.
    """
    name, html = editor.block_validate(name=name, html=html)
    with transaction.atomic():
        if EditorBlock.objects.filter(name=name).exists():
            raise CampaignError(f"A block named '{name}' already exists.")
        if EditorBlock.objects.count() >= MAX_EDITOR_BLOCKS:
            raise CampaignError(
                f"The organization has {MAX_EDITOR_BLOCKS} saved blocks; delete one first."
            )
        block = EditorBlock.objects.create(name=name, html=html, created_by=_user(actor))
        audit.record("template.block_create", actor=actor, request=request, target=block)
    return block


def editor_block_delete(
    *, block: EditorBlock, actor: Actor, request: HttpRequest | None = None
) -> None:
    """Delete a saved block (templates that used it keep their copy). Audits
    ``template.block_delete``."""
    with transaction.atomic():
        audit.record(
            "template.block_delete",
            actor=actor,
            request=request,
            target=block,
            details={"block_id": block.pk},
        )
        block.delete()
