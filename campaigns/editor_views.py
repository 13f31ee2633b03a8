"""The visual email editor and the template library (issue 19 items 1 and 2).

The editor page loads GrapesJS from ``static/vendor`` and its behaviour from
``static/js/template_editor.js``; this module only parses the form, calls one service
and renders. Saved blocks are read and written through the API (``editor_api.py``).
"""

from __future__ import annotations

from typing import Any

from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse

from campaigns import services
from campaigns.content import editor, footer, library, templating
from campaigns.models import EmailTemplate

CHANGE = "campaigns.change_campaign"

# Fields the merge-field picker offers: text values only (``custom`` is a mapping and
# ``conditions`` / ``medications`` are lists; code mode can still use them).
_NOT_PICKABLE = {"custom", "conditions", "medications"}

PHI_WARNING = (
    "PHI field: the template becomes PHI-bearing. It is then sent only through a secure "
    "channel (S/MIME, OpenPGP or the secure portal) under the campaign's policy, and "
    "needs a Compliance Officer's approval. Never put PHI in the subject."
)

#: GrapesJS builds its canvas and panels with inline styles and injected <style>
#: elements, and the canvas shows the template's own inline styles and remote images.
#: Only this page relaxes the CSP, and only for styles and images: scripts stay 'self'
#: (no 'unsafe-eval', no inline script). docs/security.md "Visual editor".
EDITOR_CSP = {"style-src": [UNSAFE_INLINE], "img-src": ["https:"]}


class VisualTemplateForm(forms.Form):
    name = forms.CharField(max_length=200)
    subject = forms.CharField(
        max_length=998,
        help_text='Jinja2, e.g. {{ contact.first_name|default("Hello") }}, your visit',
    )
    html = forms.CharField(
        label="HTML (code mode)",
        widget=forms.Textarea(attrs={"rows": 24, "spellcheck": "false", "class": "code"}),
        help_text="The HTML the visual editor produces. Edit it here for full control; the "
        "organization footer block must stay as it is.",
    )
    text = forms.CharField(
        label="Text body",
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false", "class": "code"}),
        help_text="Optional: generated from the HTML when empty.",
    )
    # The editor's design (JSON), bounded by editor.project_parse; empty in code mode.
    editor_project = forms.CharField(
        required=False,
        widget=forms.HiddenInput(attrs={"id": "editor-project"}),
    )
    mode = forms.ChoiceField(
        choices=[("visual", "visual"), ("code", "code")],
        initial="visual",
        widget=forms.HiddenInput(attrs={"id": "editor-mode"}),
    )


def _library_choices() -> list[tuple[str, str]]:
    return [(t.slug, t.name) for t in library.library_templates()]


class LibraryForm(forms.Form):
    slug = forms.ChoiceField(choices=_library_choices)
    name = forms.CharField(max_length=200, required=False)


def _merge_fields(*, phi: bool) -> list[dict[str, Any]]:
    schema = templating.template_schema()
    fields = [
        {"path": f"contact.{name}", "label": name.replace("_", " "), "phi": False}
        for name in schema.contact
        if name not in _NOT_PICKABLE
    ]
    if phi:
        fields += [
            {"path": f"phi.{name}", "label": name.replace("_", " "), "phi": True}
            for name in schema.phi
            if name not in _NOT_PICKABLE
        ]
    fields += [
        {"path": f"org.{name}", "label": f"organization {name.replace('_', ' ')}", "phi": False}
        for name in schema.org
    ]
    return fields


def _editor_page(request: HttpRequest, template: EmailTemplate | None) -> HttpResponse:
    initial: dict[str, Any] = {"mode": "visual"}
    if template is not None:
        initial |= {
            "name": template.name,
            "subject": template.subject,
            "html": template.html,
            "text": template.text,
        }
    form = VisualTemplateForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            # Saved from code mode, the HTML no longer matches the old design: drop it,
            # and the editor rebuilds the design from the HTML next time.
            project = (
                editor.project_parse(data["editor_project"]) if data["mode"] == "visual" else None
            )
            fields = {k: data[k] for k in ("name", "subject", "html", "text")}
            if template is None:
                template = services.template_create(
                    actor=request.user,
                    request=request,
                    editor_project=project,
                    require_footer=True,
                    **fields,
                )
            else:
                template = services.template_update(
                    template=template,
                    actor=request.user,
                    request=request,
                    editor_project=project,
                    require_footer=True,
                    **fields,
                )
        except templating.TemplateError as error:
            field = {"subject": "subject", "text body": "text"}.get(error.part)
            form.add_error(field, str(error))
        except services.CampaignError as error:
            form.add_error(None, str(error))
        else:
            messages.success(
                request, f"Template saved{' (PHI-bearing)' if template.phi_bearing else ''}."
            )
            return redirect("campaigns:template_visual_edit", pk=template.pk)
    can_phi = request.user.has_perm("luxmail.view_phi")
    config = {
        "footerHtml": footer.FOOTER_HTML,
        "project": template.editor_project if template is not None else None,
        "blocksUrl": reverse("api-editor-blocks"),
        "fields": _merge_fields(phi=can_phi),
        "phiWarning": PHI_WARNING,
        "maxDefault": 200,
    }
    return render(
        request,
        "campaigns/template_visual.html",
        {
            "nav": "campaigns",
            "form": form,
            "template": template,
            "config": config,
            "title": template.name if template else "New template (visual editor)",
        },
    )


@login_required
@permission_required(CHANGE, raise_exception=True)
@csp_update(EDITOR_CSP)
def template_visual_new(request: HttpRequest) -> HttpResponse:
    return _editor_page(request, None)


@login_required
@permission_required(CHANGE, raise_exception=True)
@csp_update(EDITOR_CSP)  # type: ignore[arg-type]  # django-csp types views as (request) only
def template_visual_edit(request: HttpRequest, pk: int) -> HttpResponse:
    return _editor_page(request, get_object_or_404(EmailTemplate, pk=pk))


@login_required
@permission_required(CHANGE, raise_exception=True)
def template_library(request: HttpRequest) -> HttpResponse:
    """The starting templates; choosing one creates a template and opens the editor."""
    form = LibraryForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            template = services.template_from_library(
                slug=form.cleaned_data["slug"],
                name=form.cleaned_data["name"],
                actor=request.user,
                request=request,
            )
        except (templating.TemplateError, services.CampaignError) as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, "Template created from the library.")
            return redirect("campaigns:template_visual_edit", pk=template.pk)
    return render(
        request,
        "campaigns/template_library.html",
        {
            "nav": "campaigns",
            "form": form,
            "entries": library.library_templates(),
            "title": "Template library",
        },
    )
