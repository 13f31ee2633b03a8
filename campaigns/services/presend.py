"""The pre-send check of a campaign: every item pass / warn / fail / not checked, with a
link to where it is fixed, and the guard that keeps a failing campaign from being
scheduled unless an Admin overrides it.

The check is computed each time (its inputs change under it: DNS, links, the audience);
the slow parts are cached: DNS answers and link results for
``LUXMAIL_PRESEND_CACHE_SECONDS``. Links are probed by a Celery worker
(``presend_links``): until it has answered, their item says "checking" and does not
block. The message is rendered with sample data only, so the check never decrypts PHI;
the "recipients missing fields" item takes the counts the review page already computed
through the audited path (``selectors.missing_field_counts``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.core.cache import cache
from django.db import transaction
from django.http import HttpRequest
from django.urls import reverse

from campaigns import jobs
from campaigns.content import htmlmail, templating
from campaigns.content.context import SAMPLE_CONTEXT
from campaigns.content.preheader import with_preheader
from campaigns.models import Campaign, PresendOverride
from campaigns.presend import content, dnsauth, links
from campaigns.presend.items import CheckItem, Verdict
from campaigns.selectors import audience_summary, user_is_admin
from campaigns.services import locked_footer
from campaigns.services.errors import CampaignError, _user
from campaigns.services.templates import _org, _with_footer
from luxmail import audit, conf
from luxmail.actors import Actor

# The worker stops probing after this long; what is left stays "checking" until the
# next review page view queues it again.
LINK_PROBE_BUDGET_SECONDS = 60
_SAMPLE_UNSUBSCRIBE = "https://unsubscribe.invalid/u/sample/"
MAX_NOTE = 500


class PresendBlocked(CampaignError):
    """A failing pre-send item blocks scheduling (an Admin may override)."""


@dataclass
class Sample:
    subject: str
    html: str
    text: str


@dataclass
class PresendCheck:
    items: list[CheckItem]
    override: PresendOverride | None

    @property
    def failing(self) -> list[CheckItem]:
        return [item for item in self.items if item.failed]

    @property
    def blocked(self) -> bool:
        keys = {item.key for item in self.failing}
        if not keys:
            return False
        return self.override is None or not keys <= set(self.override.items)


def render_sample(campaign: Campaign) -> Sample:
    """The campaign's message as sent, rendered with sample data (no contact, no PHI).

    Raises ``TemplateError`` when the template does not render.
    """
    template = campaign.template
    if template is None:
        raise CampaignError("Choose a template first.")
    org_row = _org()
    sources = _with_footer(subject=template.subject, html=template.html, text=template.text)
    sources["html"] = with_preheader(sources["html"], campaign.preheader)
    rendered = templating.CompiledTemplate(**sources).render(
        {
            **SAMPLE_CONTEXT,
            "org": {
                "name": org_row.name,
                "postal_address": org_row.postal_address,
                # Every org.* field: the locked footer prints footer_text too.
                "footer_text": org_row.footer_text,
            },
            "unsubscribe_url": _SAMPLE_UNSUBSCRIBE,
            "preferences_url": _SAMPLE_UNSUBSCRIBE + "preferences/",
        }
    )
    return Sample(rendered.subject, htmlmail.prepare_html(rendered.html), rendered.text)


def _campaign_links(sample: Sample) -> list[str]:
    return links.links_in(sample.html, skip_prefixes=(_SAMPLE_UNSUBSCRIBE,))


def _audience_item(campaign: Campaign, edit_url: str) -> CheckItem:
    counts = audience_summary(campaign=campaign)
    label = "Consent and suppression"
    skipped = counts["suppressed"] + counts["missing_consent"] + counts["inactive"]
    if counts["eligible"] == 0:
        return CheckItem(
            "audience",
            label,
            Verdict.WARN,
            f"Nobody would receive it: {counts['total']} in the audience, {skipped} skipped "
            "(suppressed, no consent or inactive).",
            edit_url,
            "Change the audience",
        )
    detail = (
        f"{counts['eligible']} of {counts['total']} receive it; {counts['suppressed']} "
        f"suppressed, {counts['missing_consent']} without consent, {counts['inactive']} "
        "inactive are skipped."
    )
    return CheckItem(
        "audience", label, Verdict.WARN if skipped else Verdict.PASS, detail, edit_url,
        "Change the audience",
    )  # fmt: skip


def _fields_item(fields: dict[str, Any], template_url: str) -> CheckItem:
    label = "Recipients missing fields"
    skipped = int(fields.get("skipped") or 0)
    if skipped:
        return CheckItem(
            "fields",
            label,
            Verdict.WARN,
            f"{skipped} recipient{'s' if skipped != 1 else ''} lack a field the template "
            "prints unguarded and will be skipped.",
            template_url,
            "Add a default or an if",
        )
    return CheckItem("fields", label, Verdict.PASS, "Every recipient has the fields printed.")


def _links_item(sample: Sample, campaign: Campaign, *, enqueue: bool, fix_url: str) -> CheckItem:
    label = "Links reachable"
    if conf.link_check() == "off":
        return CheckItem(
            "links", label, Verdict.NOT_CHECKED, "Link checking is off on this installation."
        )
    urls = _campaign_links(sample)
    if not urls:
        return CheckItem("links", label, Verdict.PASS, "The message has no web links.")
    results = {url: links.cached(url) for url in urls}
    unprobed = any(r is None for r in results.values())
    # One queued probe per campaign at a time (the worker clears the mark when done).
    if unprobed and enqueue and cache.add(f"presend:links-queued:{campaign.pk}", 1, 30):
        jobs.PRESEND_LINKS.delay(campaign.pk)
        results = {url: links.cached(url) for url in urls}  # an eager worker answered
    broken = [f"{url} — {r.detail}" for url, r in results.items() if r and r.checked and not r.ok]
    unchecked = [f"{url} — {r.detail}" for url, r in results.items() if r and not r.checked]
    pending = [url for url, r in results.items() if r is None]
    if broken:
        return CheckItem(
            "links",
            label,
            Verdict.FAIL,
            f"{len(broken)} of {len(urls)} links do not reach a page.",
            fix_url,
            "Edit the template",
            lines=broken + unchecked,
        )
    if pending:
        return CheckItem(
            "links",
            label,
            Verdict.PENDING,
            f"A worker is checking {len(pending)} of {len(urls)} links; reload to see the result.",
            lines=unchecked,
        )
    if unchecked:
        return CheckItem(
            "links",
            label,
            Verdict.WARN,
            f"{len(unchecked)} links point to private addresses patients cannot reach.",
            fix_url,
            "Edit the template",
            lines=unchecked,
        )
    return CheckItem("links", label, Verdict.PASS, f"All {len(urls)} links answer.")


def _dns_items(campaign: Campaign, sender_url: str) -> list[CheckItem]:
    if campaign.sender is None:
        return [
            CheckItem(
                "sender",
                "Sender identity",
                Verdict.FAIL,
                "Choose a sender identity.",
                reverse("campaigns:edit", args=[campaign.pk]),
                "Change the campaign",
            )
        ]
    if not conf.dns_check():
        return [
            CheckItem(
                "dns",
                "SPF, DKIM and DMARC",
                Verdict.NOT_CHECKED,
                "DNS checks are off on this installation.",
            )
        ]
    return [
        dnsauth.check_spf(campaign.sender, sender_url),
        dnsauth.check_dkim(campaign.sender, sender_url),
        dnsauth.check_dmarc(campaign.sender, sender_url),
    ]


def _locked_footer_item(campaign: Campaign) -> CheckItem:
    template = campaign.template
    if template is None or not locked_footer.campaign_is_marketing(campaign):
        return content.check_locked_footer(has_footer=True, marketing=False, fix_url="")
    fix_url = (
        reverse("campaigns:template_add_footer", args=[template.pk])
        + "?"
        + urlencode({"next": reverse("campaigns:review", args=[campaign.pk])})
    )
    return content.check_locked_footer(
        has_footer=locked_footer.template_usable_for_marketing(template),
        marketing=True,
        fix_url=fix_url,
    )


def presend_check(
    *, campaign: Campaign, fields: dict[str, Any] | None = None, enqueue: bool = True
) -> PresendCheck:
    """Every pre-send item of ``campaign``, and the override in force (if any).

    Reads only (DNS and the link cache); ``enqueue`` queues the link probe for links
    not in the cache. ``fields``: the review page's missing-field counts; without it
    that item is left out (it needs an audited read of PHI).
    """
    edit_url = reverse("campaigns:edit", args=[campaign.pk])
    template_url = (
        reverse("campaigns:template_edit", args=[campaign.template_id])
        if campaign.template_id
        else edit_url
    )
    items = [_audience_item(campaign, edit_url)]
    if fields:
        items.append(_fields_item(fields, template_url))
    try:
        sample = render_sample(campaign)
    except CampaignError as error:
        items.append(CheckItem("template", "Template", Verdict.FAIL, str(error), edit_url,
                               "Choose a template"))  # fmt: skip
        sample = None
    except templating.TemplateError as error:
        items.append(
            CheckItem("template", "Template", Verdict.FAIL, f"It does not render: {error}",
                      template_url, "Edit the template")
        )  # fmt: skip
        sample = None
    if sample is not None:
        items += [
            _links_item(sample, campaign, enqueue=enqueue, fix_url=template_url),
            content.check_images(sample.html, template_url),
            content.check_size(sample.html, template_url),
            content.check_footer(
                html=sample.html,
                text=sample.text,
                unsubscribe_url=_SAMPLE_UNSUBSCRIBE,
                postal_address=_org().postal_address,
                settings_url=reverse("settings"),
            ),
            _locked_footer_item(campaign),
            content.check_subject(sample.subject, template_url),
            content.check_spam_words(
                subject=sample.subject, text=sample.text, fix_url=template_url
            ),
        ]
    sender_url = (
        reverse("campaigns:sender_detail", args=[campaign.sender_id]) if campaign.sender_id else ""
    )
    items += _dns_items(campaign, sender_url)
    override = PresendOverride.objects.filter(campaign=campaign).first()
    return PresendCheck(items=items, override=override)


def _fresh(campaign: Campaign) -> Campaign:
    """The campaign as stored now (the guard must not judge a stale copy)."""
    return Campaign.objects.select_related("template", "sender").get(pk=campaign.pk)


def presend_require(*, campaign: Campaign) -> None:
    """The schedule action's guard: raises :class:`PresendBlocked` naming the failing
    items unless none fails or an Admin's override covers every one of them."""
    campaign = _fresh(campaign)
    # Not an item an Admin can override: the locked footer's own, clearer refusal.
    locked_footer.footer_require_for_marketing(campaign)
    if campaign.template_id is None or campaign.sender_id is None:
        return  # campaign_schedule refuses these with its own message
    check = presend_check(campaign=campaign, enqueue=False)
    if check.blocked:
        names = ", ".join(item.label for item in check.failing)
        raise PresendBlocked(
            f"The pre-send check fails ({names}). Fix it, or ask an Admin to override the "
            "check with a note on the review page."
        )


def presend_override(
    *, campaign: Campaign, actor: Actor, note: str, request: HttpRequest | None = None
) -> PresendOverride:
    """An Admin lets the campaign be scheduled despite the items failing now.

    Needs the Admin role and a note. Covers exactly the items failing at this moment: a
    new failure blocks again. Audits ``campaign.presend_override`` (item keys and note).
    """
    if not user_is_admin(actor):
        raise CampaignError("Only an Admin can override the pre-send check.")
    note = " ".join(note.split())[:MAX_NOTE]
    if not note:
        raise CampaignError("Say why the check is overridden (the note is audited).")
    campaign = _fresh(campaign)
    check = presend_check(campaign=campaign, enqueue=False)
    keys = sorted(item.key for item in check.failing)
    if not keys:
        raise CampaignError("Nothing fails in the pre-send check; there is nothing to override.")
    with transaction.atomic():
        override = PresendOverride.objects.create(
            campaign=campaign, items=keys, note=note, created_by=_user(actor)
        )
        audit.record(
            "campaign.presend_override",
            actor=actor,
            request=request,
            target=campaign,
            details={"items": keys, "note": note},
        )
    return override


def presend_links_probe(*, campaign_id: int) -> int:
    """Worker side: probe the campaign's links not in the cache; returns how many were
    probed. Idempotent; bounded by :data:`LINK_PROBE_BUDGET_SECONDS`."""
    if conf.link_check() == "off":
        return 0
    campaign = Campaign.objects.select_related("template").filter(pk=campaign_id).first()
    if campaign is None or campaign.template is None:
        return 0
    try:
        sample = render_sample(campaign)
    except (CampaignError, templating.TemplateError):
        return 0
    deadline = time.monotonic() + LINK_PROBE_BUDGET_SECONDS
    probed = 0
    for url in _campaign_links(sample):
        if time.monotonic() > deadline:
            break
        if links.cached(url) is None:
            links.remember(url, links.probe(url))
            probed += 1
    cache.delete(f"presend:links-queued:{campaign_id}")
    return probed
