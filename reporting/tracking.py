"""Tracking in outgoing mail: link rewriting, the open pixel, and campaign link plans.

``campaigns.sending.channels`` calls :func:`rewrite_links` and :func:`add_open_pixel` for every
message when the campaign's tracking toggles are on (docs/tracking.md#links).

**Which links are tracked.** A campaign's links are frozen with its template: every
``<a href>`` of the frozen HTML whose target is a literal ``http(s)`` URL gets an index
(1, 2, … in order of first appearance; the same URL twice shares one index) in
:class:`~reporting.models.TrackedLink`. Links whose target is computed by the
template (``{{ … }}``) are left alone, and so are our own unsubscribe and preference
links (``List-Unsubscribe`` and the footer must reach us directly) and
``mailto:``/``tel:``. A click token names (message, campaign, index), so the redirect
can only go to a URL of that campaign's template — of which that message is a copy.

**Honeypot.** With :attr:`TrackingOptions.honeypot`, index 0 is a hidden, empty link
at the top of the body that people cannot see or reach; only crawlers follow it.

Plans are computed once per campaign (deterministically, so every worker agrees) and
cached per process, in Redis (for the web processes answering clicks) and in the
database (the source of truth).
"""

from __future__ import annotations

import html as html_lib
import json
import logging
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from html.parser import HTMLParser

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction

from campaigns.content.splice import Group, Mark, SplicedPart
from campaigns.models import Campaign
from reporting import buffer, tokens
from reporting.models import TrackedLink, TrackingOptions

logger = logging.getLogger(__name__)

_HREF = re.compile(r"(<a\b[^>]*?\bhref\s*=\s*)(\"[^\"]*\"|'[^']*')", re.IGNORECASE)
_BODY_OPEN = re.compile(r"<body\b[^>]*>", re.IGNORECASE)
_BODY_CLOSE = re.compile(r"</body\s*>", re.IGNORECASE)
_TEMPLATE_SYNTAX = ("{{", "{%", "{#")
_PLAN_CACHE_SIZE = 512
# Distinct quoted hrefs remembered per plan; personalized hrefs (a contact's value in
# the URL) could make them unbounded, so the memo starts over past this size.
_QUOTED_MEMO_SIZE = 4096
_REDIS_KEY = "luxmail:tracking:links:{}"


@dataclass(frozen=True)
class LinkPlan:
    """The tracked links of one campaign: ``urls[i]`` is the target of index i (0: honeypot)."""

    campaign_id: int
    urls: dict[int, str]
    honeypot: bool

    @property
    def link_count(self) -> int:
        """Real links (the honeypot excluded): the classifier's ``link_count``."""
        return sum(1 for index in self.urls if index != 0)

    def index_of(self, url: str) -> int | None:
        return self._by_url().get(url)

    def indexes_by_quoted(self) -> dict[str, int | None]:
        """A memo of :meth:`index_of` keyed by the raw quoted ``href`` value as written in
        the HTML (quotes and entities included): the same few links recur in every
        message of the campaign, so each is unescaped and looked up once per process."""
        cached = getattr(self, "_quoted_cache", None)
        if cached is None or len(cached) > _QUOTED_MEMO_SIZE:
            cached = {}
            object.__setattr__(self, "_quoted_cache", cached)
        return cached

    def _by_url(self) -> dict[str, int]:
        cached = getattr(self, "_by_url_cache", None)
        if cached is None:
            cached = {url: index for index, url in self.urls.items() if index}
            object.__setattr__(self, "_by_url_cache", cached)
        return cached


# --- which links a template has -----------------------------------------------------------


class _AnchorTargets(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.targets: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            for name, value in attrs:
                if name == "href" and value is not None:
                    self.targets.append(value.strip())


def _own_recipient_link(url: str) -> bool:
    base = settings.LUXMAIL_BASE_URL.rstrip("/")
    return url.startswith((f"{base}/u/", f"{base}/t/", f"{base}/portal/"))


def trackable(url: str) -> bool:
    """A literal http(s) URL that is not one of our own recipient links."""
    if any(marker in url for marker in _TEMPLATE_SYNTAX):
        return False
    if not url.lower().startswith(("http://", "https://")) or len(url) > 2000:
        return False
    return not _own_recipient_link(url)


def template_links(frozen_html: str) -> list[str]:
    """The distinct trackable link targets of a template, in order of appearance."""
    parser = _AnchorTargets()
    parser.feed(frozen_html)
    parser.close()
    seen: dict[str, None] = {}
    for target in parser.targets:
        if trackable(target):
            seen.setdefault(target, None)
    return list(seen)


# --- plans: compute once, cache in the process, Redis and the database --------------------

_plans: OrderedDict[int, LinkPlan] = OrderedDict()
_plans_lock = threading.Lock()


def _remember(plan: LinkPlan) -> LinkPlan:
    with _plans_lock:
        _plans[plan.campaign_id] = plan
        _plans.move_to_end(plan.campaign_id)
        while len(_plans) > _PLAN_CACHE_SIZE:
            _plans.popitem(last=False)
    return plan


def forget_plans() -> None:
    """Drop the process cache (tests)."""
    with _plans_lock:
        _plans.clear()


def _from_rows(campaign_id: int, rows: list[tuple[int, str]]) -> LinkPlan:
    urls = dict(rows)
    return LinkPlan(campaign_id, urls, honeypot=0 in urls)


def _redis_store(plan: LinkPlan) -> None:

    client = buffer.redis_client()
    if client is None:
        return
    payload = json.dumps({str(index): url for index, url in plan.urls.items()})
    try:
        client.set(_REDIS_KEY.format(plan.campaign_id), payload, ex=400 * 86400)
    except buffer.REDIS_ERRORS:
        logger.warning("Could not cache the link plan of campaign %s in Redis", plan.campaign_id)


def _redis_load(campaign_id: int) -> LinkPlan | None:

    client = buffer.redis_client()
    if client is None or not buffer.redis_healthy():
        return None
    try:
        payload = client.get(_REDIS_KEY.format(campaign_id))
    except buffer.REDIS_ERRORS:
        buffer.mark_redis_down()
        return None
    if not payload:
        return None
    rows = [(int(index), url) for index, url in json.loads(payload).items()]
    return _from_rows(campaign_id, rows)


def plan_for_sending(campaign_id: int) -> LinkPlan:
    """The campaign's plan, frozen now if this is its first message (idempotent).

    Every worker computes the same plan from the frozen template; the unique
    constraint makes the first writer's rows the plan and the others read them.
    """
    cached = _plans.get(campaign_id)
    if cached is not None:
        return cached

    rows = list(TrackedLink.objects.filter(campaign_id=campaign_id).values_list("index", "url"))
    if not rows:
        campaign = Campaign.objects.only("frozen_html").get(pk=campaign_id)
        honeypot = TrackingOptions.objects.filter(campaign_id=campaign_id, honeypot=True).exists()
        wanted = [(i, url) for i, url in enumerate(template_links(campaign.frozen_html), 1)]
        if honeypot:
            wanted.insert(0, (0, ""))
        if wanted:
            try:
                with transaction.atomic():
                    TrackedLink.objects.bulk_create(
                        [TrackedLink(campaign_id=campaign_id, index=i, url=u) for i, u in wanted]
                    )
            except IntegrityError:
                pass  # another worker froze it first; its rows are identical
            rows = list(
                TrackedLink.objects.filter(campaign_id=campaign_id).values_list("index", "url")
            )
    plan = _from_rows(campaign_id, rows)
    _redis_store(plan)
    return _remember(plan)


def plan_for_click(campaign_id: int) -> LinkPlan | None:
    """The campaign's plan for the redirect: process cache, then Redis, then the database.

    Never freezes anything (a campaign without rows has no tracked links). Returns None
    when neither Redis nor the database can answer right now.
    """
    cached = _plans.get(campaign_id)
    if cached is not None:
        return cached
    plan = _redis_load(campaign_id)
    if plan is None:
        try:
            rows = list(
                TrackedLink.objects.filter(campaign_id=campaign_id).values_list("index", "url")
            )
        except DatabaseError:
            logger.warning("Link plan of campaign %s unavailable (database error)", campaign_id)
            return None
        plan = _from_rows(campaign_id, rows)
        if rows:
            _redis_store(plan)
    return _remember(plan)


# --- the seam called by the send pipeline -------------------------------------------------


def base_url() -> str:
    return settings.LUXMAIL_BASE_URL.rstrip("/")


def click_url(*, message_id: int, campaign_id: int, link_index: int) -> str:
    token = tokens.make(
        tokens.CLICK, message_id=message_id, campaign_id=campaign_id, link_index=link_index
    )
    return f"{base_url()}/t/c/{token}"


def open_url(*, message_id: int, campaign_id: int) -> str:
    token = tokens.make(tokens.OPEN, message_id=message_id, campaign_id=campaign_id)
    return f"{base_url()}/t/o/{token}"


_HONEYPOT_STYLE = (
    "display:none !important;mso-hide:all;max-height:0;max-width:0;overflow:hidden;"
    "font-size:0;line-height:0;opacity:0"
)


def rewrite_links(html: str, *, message_id: int, campaign_id: int) -> str:
    """``html`` with every tracked link pointing at its click redirect (and the honeypot)."""
    plan = plan_for_sending(campaign_id)
    if not plan.urls:
        return html
    clicks = f"{base_url()}/t/c/"  # once per message, not once per link
    indexes = plan.indexes_by_quoted()

    def replace(match: re.Match[str]) -> str:
        quoted = match.group(2)
        if quoted in indexes:
            index = indexes[quoted]
        else:
            index = indexes[quoted] = plan.index_of(html_lib.unescape(quoted[1:-1]).strip())
        if index is None:
            return match.group(0)
        token = tokens.make(
            tokens.CLICK, message_id=message_id, campaign_id=campaign_id, link_index=index
        )
        return f'{match.group(1)}"{clicks}{token}"'

    rewritten = _HREF.sub(replace, html)
    if plan.honeypot:
        trap = (
            f'<a href="{click_url(message_id=message_id, campaign_id=campaign_id, link_index=0)}"'
            f' style="{_HONEYPOT_STYLE}" aria-hidden="true" tabindex="-1"></a>'
        )
        body = _BODY_OPEN.search(rewritten)
        if body is not None:
            rewritten = rewritten[: body.end()] + trap + rewritten[body.end() :]
        else:
            rewritten = trap + rewritten
    return rewritten


def add_open_pixel(html: str, *, message_id: int, campaign_id: int) -> str:
    """``html`` with a 1x1 tracking image before the (last) closing body tag."""
    pixel = (
        f'<img src="{open_url(message_id=message_id, campaign_id=campaign_id)}" width="1" '
        'height="1" alt="" style="display:block;border:0;width:1px;height:1px">'
    )
    closing = None
    for match in _BODY_CLOSE.finditer(html):
        closing = match
    if closing is None:
        return html + pixel
    return html[: closing.start()] + pixel + html[closing.start() :]


# --- the same, found once per template ----------------------------------------------------

# Any placeholder of SplicedPart.placeholder_text (slots) and of the marks added here.
_PLACEHOLDER = re.compile("[\U000f0000-\U0010ffff]")
_MARK_BASE = 0x100000
# From a "<" to the next ">" (or the end): a tag.
_TAG_SPAN = re.compile(r"<[^>]*")
_ANCHOR_OR_BODY = re.compile(r"<(?:a\b|/?body)", re.IGNORECASE)
_ANCHOR = re.compile(r"<a\b", re.IGNORECASE)
_NAME_THEN_VALUE = re.compile("</?\\w*[\U000f0000-\U0010ffff]")
HONEYPOT = "honeypot"
PIXEL = "pixel"


def track_part(
    part: SplicedPart, *, campaign_id: int, clicks: bool, opens: bool
) -> SplicedPart | None:
    """``part`` (a campaign's HTML as static text and slots) with :func:`rewrite_links`
    and :func:`add_open_pixel` applied once: each tracked link target, the honeypot and
    the pixel become marks whose text :func:`marks` mints per message, and a link
    target that holds a value becomes a group looked up per message, as
    :func:`rewrite_links` does. Joining it with a recipient's values gives exactly what
    rendering and then tracking gives (tested) — or this returns None, and every
    message is tracked after rendering.

    Why that holds: a spliced HTML value is escaped, so it holds no ``<``, ``>`` or
    quote. A value may be anywhere but in the tag of an anchor or a body (``<`` to the
    next ``>``) — there only inside the quoted target of the anchor's ``href`` — and
    not right after a ``<``. Then every match of the tracking expressions starts, ends
    and turns on static text only: the matches are the same in every message, and a
    value inside a target can change which link it is, never where it is."""
    if not part.html:
        return None
    text = part.placeholder_text()
    if text is None:
        return None
    links = list(_HREF.finditer(text))
    targets = [link.span(2) for link in links]
    for tag in _TAG_SPAN.finditer(text):
        if not _PLACEHOLDER.search(tag.group()):
            continue
        if _NAME_THEN_VALUE.match(tag.group()):
            return None  # a value could name the tag (or end its name)
        if not _ANCHOR_OR_BODY.match(tag.group()):
            continue  # no expression looks into other tags
        if not _ANCHOR.match(tag.group()):
            return None  # a value in a body tag
        for found in _PLACEHOLDER.finditer(tag.group()):
            at = tag.start() + found.start()
            if not any(start < at < end - 1 for start, end in targets):
                return None  # a value in the anchor tag, outside its quoted target
    added: list[Mark | Group] = []

    def mark(piece: Mark | Group) -> str:
        added.append(piece)
        return chr(_MARK_BASE + len(added) - 1)

    plan = plan_for_sending(campaign_id) if clicks else None
    if plan is not None and plan.urls:

        def replace(match: re.Match[str]) -> str:
            quoted = match.group(2)
            if _PLACEHOLDER.search(quoted):
                group = Group(("href", len(added)), tuple(part.pieces_of(quoted)))
                return match.group(1) + mark(group)
            index = plan.index_of(html_lib.unescape(quoted[1:-1]).strip())
            if index is None:
                return match.group(0)
            return f'{match.group(1)}"{mark(Mark(("click", index)))}"'

        text = _HREF.sub(replace, text)
        if plan.honeypot:
            body = _BODY_OPEN.search(text)
            if body is not None:
                if _PLACEHOLDER.search(body.group()):
                    return None
                text = text[: body.end()] + mark(Mark(HONEYPOT)) + text[body.end() :]
            else:
                text = mark(Mark(HONEYPOT)) + text
    if opens:
        closing = None
        for match in _BODY_CLOSE.finditer(text):
            closing = match
        if closing is None:
            text = text + mark(Mark(PIXEL))
        else:
            text = text[: closing.start()] + mark(Mark(PIXEL)) + text[closing.start() :]
    return part.with_marks(text, added)


def marks(
    keys: tuple[object, ...], *, message_id: int, campaign_id: int, pixel: bool = True
) -> dict[object, object]:
    """One message's text of a tracked part's marks (:func:`track_part`), and the
    lookup of its groups; without ``pixel`` the open pixel is left out (the portal
    copy has none)."""
    base = base_url()
    clicks = f"{base}/t/c/"
    made: dict[int, str] = {}
    maker = tokens.MessageTokens(message_id=message_id, campaign_id=campaign_id)

    def click(index: int) -> str:
        token = made.get(index)
        if token is None:
            token = made[index] = maker.click(index)
        return clicks + token

    def target(quoted: str) -> str:
        plan = plan_for_sending(campaign_id)
        indexes = plan.indexes_by_quoted()
        if quoted in indexes:
            index = indexes[quoted]
        else:
            index = indexes[quoted] = plan.index_of(html_lib.unescape(quoted[1:-1]).strip())
        return quoted if index is None else f'"{click(index)}"'

    out: dict[object, object] = {}
    for key in keys:
        if key == PIXEL:
            out[key] = (
                (
                    f'<img src="{base}/t/o/{maker.open()}" '
                    'width="1" height="1" alt="" '
                    'style="display:block;border:0;width:1px;height:1px">'
                )
                if pixel
                else ""
            )
        elif key == HONEYPOT:
            out[key] = (
                f'<a href="{click(0)}"'
                f' style="{_HONEYPOT_STYLE}" aria-hidden="true" tabindex="-1"></a>'
            )
        elif isinstance(key, tuple) and key[0] == "href":
            out[key] = target
        elif isinstance(key, tuple):
            out[key] = click(key[1])
    return out
