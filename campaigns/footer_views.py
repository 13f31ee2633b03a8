"""The one-click "Add the organization footer" for a template (issue 19 item 2).

Marketing may only use templates carrying the locked footer; this page adds it to an
existing template through ``services.template_add_footer``. GET shows what will happen
(the pre-send check links here), POST does it and returns to ``next`` (a same-site
path only) or the template.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from campaigns import services
from campaigns.content import templating
from campaigns.models import EmailTemplate

CHANGE = "campaigns.change_campaign"


def _next_url(request: HttpRequest, template: EmailTemplate) -> str:
    wanted = request.POST.get("next") or request.GET.get("next") or ""
    if wanted and url_has_allowed_host_and_scheme(
        wanted, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return wanted
    return reverse("campaigns:template_edit", args=[template.pk])


@login_required
@permission_required(CHANGE, raise_exception=True)
def template_add_footer(request: HttpRequest, pk: int) -> HttpResponse:
    template = get_object_or_404(EmailTemplate, pk=pk)
    next_url = _next_url(request, template)
    if request.method == "POST":
        try:
            services.template_add_footer(template=template, actor=request.user, request=request)
        except (templating.TemplateError, services.CampaignError) as error:
            messages.error(request, f"The footer could not be added: {error}")
        else:
            messages.success(request, "The organization footer was added to the template.")
        return redirect(next_url)
    return render(
        request,
        "campaigns/template_add_footer.html",
        {
            "nav": "campaigns",
            "template": template,
            "next_url": next_url,
            "title": f"Add the organization footer to “{template.name}”",
        },
    )
