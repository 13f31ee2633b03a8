"""Tracking applied once per template (``tracking.track_part``) gives, for every
recipient's values, exactly what rendering each message and then tracking it gives —
or declines (None) where a value could change where the links are."""

from __future__ import annotations

import itertools

import pytest

from campaigns.content.templating import CompiledTemplate
from reporting import tracking

BENCH = """<html><head><style>p { color: #222; }</style></head><body>
<h1>Hello {{ contact.first_name }} {{ contact.last_name }},</h1>
<p><a class="cta" href="https://clinic.example/book?c=autumn&amp;x=1">Book a visit</a></p>
<p>Read <a href="https://clinic.example/flu">the flu page</a> or
<A HREF='https://clinic.example/hours'>see our hours</A>, again
<a href="https://clinic.example/flu">the flu page</a>, <a href="mailto:desk@clinic.example">mail</a>
<a href=https://clinic.example/bare>bare</a>.</p>
<p><a href="{{ unsubscribe_url }}">Unsubscribe</a> ·
<a href="{{ preferences_url }}">Preferences</a><br>{{ org.name }}</p>
</body></html>
"""

TRACKED = {
    "bench": BENCH,
    "upper body, no end": '<BODY class="x"><a href="https://clinic.example/flu">'
    "{{ contact.first_name }}</a>",
    "no body": '<p>{{ contact.first_name }} <a href="https://clinic.example/flu">flu</a></p>',
    "value in target": '<body><a href="https://clinic.example/{{ contact.first_name }}">x</a>'
    '<a href="https://clinic.example/flu">flu</a></body>',
    "value in other tags": '<body><td title="{{ contact.first_name }}">'
    '<img alt="{{ contact.last_name }}">'
    '<a href="https://clinic.example/hours">h</a></td></BODY >',
    "target across a tag end": '<body><a href="https://clinic.example/flu>'
    '{{ contact.first_name }}">x</a>'
    '<a href="https://clinic.example/flu">flu</a></body>',
    "two closings": '<body><a href="https://clinic.example/flu">{{ contact.first_name }}</a></body>'
    "</body>",
    "no links": "<body><p>Hi {{ contact.first_name }}</p></body>",
}

DECLINED = {
    "value in anchor, not target": '<body><a title="{{ contact.first_name }}" '
    'href="https://clinic.example/flu">x</a></body>',
    "value ends a tag name": '<bo{{ contact.first_name }}><a href="https://clinic.example/flu">x</a>',
    "value names a tag": '<{{ contact.first_name }}><a href="https://clinic.example/flu">x</a>',
    "value in body tag": '<body class="{{ contact.first_name }}">'
    '<a href="https://clinic.example/flu">x</a></body>',
    "value after <a": '<a{{ contact.first_name }} href="https://clinic.example/flu">x</a>',
}

VALUES = [
    "Ana",
    "flu",
    'href="https://clinic.example/flu"',
    "<a href='https://clinic.example/flu'>",
    "</body> <body>",
    "&amp; \U000f0001 \U00100000",
    "",
    "dy",
    "a href=",
]

_ids = itertools.count(990_001)


def _plan(html: str, honeypot: bool) -> int:
    campaign_id = next(_ids)
    urls = dict(enumerate(tracking.template_links(html), 1))
    if honeypot:
        urls[0] = ""
    tracking._remember(tracking.LinkPlan(campaign_id, urls, honeypot=honeypot))
    return campaign_id


def _context(value: str, message_id: int) -> dict:
    return {
        "contact": {"first_name": value, "last_name": value[::-1]},
        "phi": {},
        "org": {"name": "Springfield <Clinic>"},
        "unsubscribe_url": f"https://lux.example/u/tok{message_id}/",
        "preferences_url": f"https://lux.example/u/tok{message_id}/preferences/",
    }


@pytest.mark.parametrize(
    ("clicks", "opens", "honeypot"),
    [(True, True, False), (True, True, True), (True, False, True), (False, True, False)],
)
@pytest.mark.parametrize("name", sorted(TRACKED))
def test_tracked_once_equals_tracked_per_message(name, clicks, opens, honeypot):
    html = TRACKED[name]
    campaign_id = _plan(html, honeypot)
    compiled = CompiledTemplate(subject="s", html=html, text="t")
    part = compiled.html_part()
    assert part is not None
    tracked = tracking.track_part(part, campaign_id=campaign_id, clicks=clicks, opens=opens)
    assert tracked is not None
    for message_id, value in enumerate(VALUES, 7):
        context = _context(value, message_id)
        rendered = compiled.render(context).html
        linked = (
            tracking.rewrite_links(rendered, message_id=message_id, campaign_id=campaign_id)
            if clicks
            else rendered
        )
        expected = (
            tracking.add_open_pixel(linked, message_id=message_id, campaign_id=campaign_id)
            if opens
            else linked
        )
        marks = tracking.marks(tracked.mark_keys, message_id=message_id, campaign_id=campaign_id)
        once = compiled.render(context, html_part=tracked, marks=marks)
        assert once.html_from_part
        assert once.html == expected, (name, value)
        portal = tracking.marks(
            tracked.mark_keys, message_id=message_id, campaign_id=campaign_id, pixel=False
        )
        assert tracked.render(context, portal) == linked


def test_a_value_in_a_target_is_looked_up_per_message():
    html = TRACKED["value in target"]
    campaign_id = _plan(html, False)
    compiled = CompiledTemplate(subject="s", html=html, text="t")
    tracked = tracking.track_part(
        compiled.html_part(), campaign_id=campaign_id, clicks=True, opens=False
    )
    marks = tracking.marks(tracked.mark_keys, message_id=5, campaign_id=campaign_id)
    html_flu = compiled.render(_context("flu", 5), html_part=tracked, marks=marks).html
    assert "https://clinic.example/flu" not in html_flu  # both links are the tracked one
    assert html_flu.count("/t/c/") == 2
    html_ana = compiled.render(_context("Ana", 5), html_part=tracked, marks=marks).html
    assert "https://clinic.example/Ana" in html_ana and html_ana.count("/t/c/") == 1


@pytest.mark.parametrize("name", sorted(DECLINED))
def test_values_that_could_move_links_decline(name):
    html = DECLINED[name]
    campaign_id = _plan(html, True)
    part = CompiledTemplate(subject="s", html=html, text="t").html_part()
    assert part is not None
    assert tracking.track_part(part, campaign_id=campaign_id, clicks=True, opens=True) is None


def test_a_fallback_value_renders_nothing_from_the_part():
    """A value splicing cannot print (here a number too large) sends the message
    through Jinja: the caller then tracks the rendered HTML."""
    html = TRACKED["no body"]
    campaign_id = _plan(html, False)
    compiled = CompiledTemplate(subject="s", html=html, text="t")
    tracked = tracking.track_part(
        compiled.html_part(), campaign_id=campaign_id, clicks=True, opens=True
    )
    context = _context("x", 3)
    context["contact"]["first_name"] = 10**30
    marks = tracking.marks(tracked.mark_keys, message_id=3, campaign_id=campaign_id)
    rendered = compiled.render(context, html_part=tracked, marks=marks)
    assert not rendered.html_from_part
    assert rendered.html == compiled.render(context).html
