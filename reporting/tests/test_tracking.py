"""Tracking tokens, link rewriting in the real send pipeline, and the /t/ endpoints.

What must be shown (issue 6): a forged token, a redirect to a URL not in the message
and a token for another message are all rejected — neutral answer, nothing stored.
"""

from __future__ import annotations

import base64

import pytest

from campaigns.models import Message
from reporting import buffer, tokens, tracking
from reporting.models import Event, PendingEvent, TrackedLink
from reporting.tests.helpers import (
    APPLE_MPP,
    LINKS,
    built_html,
    click_path,
    drain,
    hit,
    mark_sent,
    open_path,
    path_of,
    started_campaign,
    tracking_urls,
)

pytestmark = pytest.mark.django_db


# --- tokens -------------------------------------------------------------------------------


def test_tokens_round_trip_and_stay_short():
    token = tokens.make(tokens.CLICK, message_id=9_876_543, campaign_id=187, link_index=3)
    assert tokens.read(tokens.CLICK, token) == tokens.TrackingToken(9_876_543, 187, 3)
    opened = tokens.make(tokens.OPEN, message_id=9_876_543, campaign_id=187)
    assert tokens.read(tokens.OPEN, opened) == tokens.TrackingToken(9_876_543, 187, None)
    # Ten million messages, 200 campaigns: 20 characters for a click, 19 for an open.
    assert len(token) == 20 and len(opened) == 19
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # MAC altered
        lambda t: t[:-2],  # truncated
        lambda t: t + "A",  # extended
        lambda t: "",  # empty
        lambda t: "x" * 60,  # far too long
        lambda t: t.replace(t[0], "!"),  # not base64url
    ],
)
def test_altered_tokens_are_refused(mangle):
    token = tokens.make(tokens.CLICK, message_id=42, campaign_id=7, link_index=1)
    with pytest.raises(tokens.InvalidToken):
        tokens.read(tokens.CLICK, mangle(token))


def _reencode(token: str, *, message_id: int) -> str:
    """The same MAC over another message id: what someone editing a link would try."""
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    body, mac = raw[:-8], raw[-8:]
    ids = tokens._read_varints(body)
    ids[0] = message_id
    new_body = b"".join(tokens._varint(value) for value in ids)
    return base64.urlsafe_b64encode(new_body + mac).rstrip(b"=").decode()


def test_message_tokens_are_made_as_make_makes_them():
    for message_id in (0, 1, 127, 128, 16_383, 16_384, 9_876_543, 2**40):
        for campaign_id in (0, 5, 300):
            maker = tokens.MessageTokens(message_id=message_id, campaign_id=campaign_id)
            opened = tokens.make(tokens.OPEN, message_id=message_id, campaign_id=campaign_id)
            assert maker.open() == opened
            raw = base64.urlsafe_b64decode(opened + "=" * (-len(opened) % 4))
            assert base64.urlsafe_b64encode(raw).rstrip(b"=").decode() == opened
            for index in (0, 1, 127, 128, 1000):
                assert maker.click(index) == tokens.make(
                    tokens.CLICK, message_id=message_id, campaign_id=campaign_id, link_index=index
                )


def test_a_token_cannot_be_moved_to_another_message_or_kind():
    token = tokens.make(tokens.CLICK, message_id=42, campaign_id=7, link_index=1)
    with pytest.raises(tokens.InvalidToken):
        tokens.read(tokens.CLICK, _reencode(token, message_id=43))
    opened = tokens.make(tokens.OPEN, message_id=42, campaign_id=7)
    with pytest.raises(tokens.InvalidToken):
        tokens.read(tokens.CLICK, opened)  # an open token is not a click token
    with pytest.raises(tokens.InvalidToken):
        tokens.read(tokens.OPEN, token)


def test_tokens_survive_a_secret_key_rotation(settings):
    token = tokens.make(tokens.OPEN, message_id=5, campaign_id=1)
    old = settings.SECRET_KEY
    settings.SECRET_KEY = "a-new-secret-key-" + "y" * 40
    settings.SECRET_KEY_FALLBACKS = [old]
    assert tokens.read(tokens.OPEN, token).message_id == 5
    settings.SECRET_KEY_FALLBACKS = []
    with pytest.raises(tokens.InvalidToken):
        tokens.read(tokens.OPEN, token)


# --- which links are tracked --------------------------------------------------------------


def test_template_links_are_literal_http_links_without_our_own(settings):
    html = (
        '<a href="https://a.example/x">1</a><a href="{{ unsubscribe_url }}">u</a>'
        '<a href="https://a.example/{{ contact.external_id }}">p</a>'
        '<a href="mailto:x@y.example">m</a><a href="tel:+15551234">t</a>'
        f'<a href="{settings.LUXMAIL_BASE_URL}/u/abc/">own</a><a href="#top">anchor</a>'
        '<a href="http://b.example/?a=1&amp;b=2">2</a><a href="https://a.example/x">dup</a>'
    )
    assert tracking.template_links(html) == ["https://a.example/x", "http://b.example/?a=1&b=2"]


def test_the_send_pipeline_rewrites_links_and_adds_the_pixel(tracking_buffer):
    campaign, ids = started_campaign(2)
    html = built_html(campaign, ids[0])
    clicks, opens = tracking_urls(html)
    assert len(opens) == 1
    # Four anchors of three distinct literal URLs are tracked; the personalised link,
    # mailto and the unsubscribe link are not.
    assert len(clicks) == 4
    assert "https://clinic.example/p/X1" in html
    assert "mailto:care@clinic.example" in html
    assert "/u/" in html and "clinic.example/flu" not in html
    plan = dict(TrackedLink.objects.filter(campaign=campaign).values_list("index", "url"))
    assert plan == {1: LINKS[0], 2: LINKS[1], 3: LINKS[2]}
    # Every token names this message and this campaign.
    for url in clicks:
        parsed = tokens.read(tokens.CLICK, url.rsplit("/", 1)[1])
        assert (parsed.message_id, parsed.campaign_id) == (ids[0], campaign.pk)
    # The two anchors to the same URL share an index.
    indexes = sorted(tokens.read(tokens.CLICK, u.rsplit("/", 1)[1]).link_index for u in clicks)
    assert indexes == [1, 1, 2, 3]
    assert "aria-hidden" not in html  # no honeypot unless asked for


def test_list_unsubscribe_and_footer_links_are_never_rewritten(tracking_buffer):
    import email
    import email.policy

    from campaigns.sending import delivery

    campaign, ids = started_campaign(1)
    prepared = delivery.prepare(campaign, cache=False)
    built = delivery.build_one(
        prepared,
        message_id=ids[0],
        email="someone@example.test",
        context={"contact": {"first_name": "Ana", "external_id": "X1"}, "phi": {}},
        contact_id=None,
        relay_security="none",
    )
    parsed = email.message_from_bytes(built.data, policy=email.policy.default)
    assert "/u/" in parsed["List-Unsubscribe"] and "/t/" not in parsed["List-Unsubscribe"]


def test_tracking_toggles_off_means_plain_links(tracking_buffer):
    campaign, ids = started_campaign(1, track_opens=False, track_clicks=False)
    clicks, opens = tracking_urls(built_html(campaign, ids[0]))
    assert clicks == [] and opens == []


def test_honeypot_is_hidden_and_first(tracking_buffer, make_user):
    campaign, ids = started_campaign(1, honeypot=True)
    html = built_html(campaign, ids[0])
    clicks, _ = tracking_urls(html)
    first = tokens.read(tokens.CLICK, clicks[0].rsplit("/", 1)[1])
    assert first.link_index == 0
    assert 'aria-hidden="true" tabindex="-1"></a>' in html
    assert TrackedLink.objects.filter(campaign=campaign, index=0, url="").exists()


# --- the endpoints ------------------------------------------------------------------------


def test_open_pixel_buffers_the_request_and_answers_a_gif(client, tracking_buffer):
    campaign, ids = started_campaign(1)
    mark_sent(ids)
    response = hit(client, open_path(ids[0], campaign.pk), HTTP_SEC_PURPOSE="prefetch")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/gif" and response.content.startswith(b"GIF89a")
    assert "no-store" in response["Cache-Control"]
    assert "Set-Cookie" not in response
    report = drain()
    assert report.stored == 1
    event = Event.objects.get()
    assert (event.kind, event.message_id, event.label, event.reason) == (
        "open",
        ids[0],
        "automated",
        "prefetch_header",
    )
    assert event.ip_prefix == "198.51.100.0/24" and len(event.ip_hash) == 16
    assert "198.51.100.7" not in str(Event.objects.values().get())


def test_click_redirects_to_the_messages_own_link(client, tracking_buffer):
    campaign, ids = started_campaign(2)
    mark_sent(ids)
    clicks, _ = tracking_urls(built_html(campaign, ids[0]))
    response = hit(client, path_of(clicks[1]))
    assert response.status_code == 302
    assert response["Location"] == LINKS[1]
    assert response["Referrer-Policy"] == "no-referrer"
    # A parameter naming another target changes nothing: the target comes from the plan.
    response = hit(client, path_of(clicks[1]) + "?url=https://evil.example/")
    assert response["Location"] == LINKS[1]
    drain()
    assert list(Event.objects.values_list("kind", "link_index", "label")) == [
        ("click", 2, "human"),
        ("click", 2, "human"),
    ]


def test_forged_tokens_get_a_neutral_answer_and_are_not_stored(client, tracking_buffer):
    campaign, ids = started_campaign(2)
    mark_sent(ids)
    good_click = click_path(ids[0], campaign.pk, 1)
    good_open = open_path(ids[0], campaign.pk)
    forged_click = good_click[:-1] + ("A" if good_click[-1] != "A" else "B")
    forged_open = good_open[:-1] + ("A" if good_open[-1] != "A" else "B")
    other_message = "/t/c/" + _reencode(good_click.rsplit("/", 1)[1], message_id=ids[1])

    response = hit(client, forged_click)
    assert response.status_code == 404 and b"This link is not available" in response.content
    assert "default-src 'none'" in response["Content-Security-Policy"]
    assert hit(client, other_message).status_code == 404
    # An open with a forged token still gets the pixel: the answer reveals nothing.
    response = hit(client, forged_open)
    assert response.status_code == 200 and response.content.startswith(b"GIF89a")
    assert hit(client, "/t/c/").status_code == 404
    assert hit(client, "/t/c/%00%00").status_code == 404

    assert buffer.stream_length() in (0, None)
    assert PendingEvent.objects.count() == 0
    assert drain().stored == 0
    assert Event.objects.count() == 0


def test_a_link_that_is_not_in_the_message_is_refused(client, tracking_buffer):
    campaign, ids = started_campaign(1)
    mark_sent(ids)
    built_html(campaign, ids[0])  # freezes the plan: links 1-3
    # A token we signed, for an index this campaign does not have (e.g. another
    # campaign's fourth link): not redirected anywhere, not stored.
    response = hit(client, click_path(ids[0], campaign.pk, 9))
    assert response.status_code == 404
    assert "Location" not in response
    assert drain().stored == 0


def test_a_token_for_a_message_that_does_not_exist_is_not_stored(client, tracking_buffer):
    campaign, ids = started_campaign(1)
    mark_sent(ids)
    built_html(campaign, ids[0])
    missing = max(ids) + 1000
    assert hit(client, open_path(missing, campaign.pk)).status_code == 200
    # A real message under another campaign's id (the token would have to come from us).
    _other, other_ids = started_campaign(1)
    assert hit(client, open_path(other_ids[0], campaign.pk)).status_code == 200
    report = drain()
    assert (report.read, report.stored, report.dropped) == (2, 0, 2)
    assert Event.objects.count() == 0


def test_head_is_answered_but_never_a_human_click(client, tracking_buffer):
    campaign, ids = started_campaign(1)
    mark_sent(ids)
    built_html(campaign, ids[0])
    response = hit(client, click_path(ids[0], campaign.pk, 1), method="head")
    assert response.status_code == 302 and response.content == b""
    response = hit(client, open_path(ids[0], campaign.pk), method="head")
    assert response.status_code == 200 and response.content == b""
    assert hit(client, click_path(ids[0], campaign.pk, 1), method="post").status_code == 405
    drain()
    assert sorted(Event.objects.values_list("kind", "label", "reason")) == [
        ("click", "automated", "head_request"),
        ("open", "automated", "head_request"),
    ]


def test_honeypot_click_is_answered_neutrally_and_labelled(client, tracking_buffer):
    campaign, ids = started_campaign(1, honeypot=True)
    mark_sent(ids)
    built_html(campaign, ids[0])
    response = hit(client, click_path(ids[0], campaign.pk, 0))
    assert response.status_code == 404 and "Location" not in response
    drain()
    assert Event.objects.get().reason == "honeypot"


def test_tracking_requests_skip_sessions_and_the_mfa_gate(client, tracking_buffer, make_user):
    from luxmail.testing import verify_session

    campaign, ids = started_campaign(1)
    mark_sent(ids)
    user = make_user("Admin")
    verify_session(client, user)  # a staff member's browser following a tracking link
    response = hit(client, open_path(ids[0], campaign.pk), agent=APPLE_MPP)
    assert response.status_code == 200 and "Set-Cookie" not in response


def test_messages_keep_their_ids_only(tracking_buffer):
    """Tracking URLs carry no address and nothing from the contact."""
    campaign, ids = started_campaign(1)
    html = built_html(campaign, ids[0])
    clicks, opens = tracking_urls(html)
    for url in clicks + opens:
        assert "@" not in url and "Ana" not in url and "example.test" not in url
    assert Message.objects.filter(id__in=ids).count() == 1
