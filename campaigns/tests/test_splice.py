"""Spliced rendering prints exactly what the sandboxed Jinja environment prints, or defers."""

from __future__ import annotations

from typing import Any

import pytest
from jinja2.exceptions import TemplateSyntaxError

from campaigns.content import splice, templating
from campaigns.content.templating import HTML_ENV, TEXT_ENV, RenderError, render_string
from campaigns.tests.hostile_templates import PAYLOADS, REALISTIC

BASE: dict[str, Any] = {
    "contact": {"first_name": "Ann", "last_name": "Lee", "email": "ann@example.test"},
    "phi": {"age": 50, "next_appointment": "", "conditions": ["E11.9"]},
    "org": {"name": "Clinic", "postal_address": "1 Main St"},
    "unsubscribe_url": "https://x.test/u/t/",
    "preferences_url": "https://x.test/u/t/preferences/",
}

SPLICEABLE = [
    "Hello {{ contact.first_name }}!",
    "<p>{{ contact.first_name }} {{ contact.last_name }}</p>\n"
    '<a href="{{ unsubscribe_url }}">x</a>\n',
    "{{ contact.first_name | default('there') }}, {{ phi.next_appointment|d('soon') }}",
    "{{ phi.age }} years; {{ org.name }} — {{ org.postal_address }}",
    "{% raw %}{{ not a tag }}{% endraw %} {{ preferences_url }}",
    "line one\r\nline two {{ contact.email }}\n\n",
    "{{ contact.nickname | default('<friend> & co') }}",
    "no fields at all, but a { brace",
]

NOT_SPLICEABLE = [
    "{% if contact.first_name %}Hi{% endif %}",
    "{{ contact.first_name | upper }}",
    "{{ contact['first_name'] }}",
    "{{ contact.first_name ~ '!' }}",
    "{{ contact.first_name | default(contact.last_name) }}",
    "{{ phi.age + 1 }}",
    "{% for c in phi.conditions %}{{ c }}{% endfor %}",
    "{{ range(3) }}",
    "{{ contact }}",
    "{{ 'constant' }}",
    "{{ loop }}",
    "{% set x = 1 %}{{ x }}",
    "{{ contact.__class__ }}",
    REALISTIC,
]

HOSTILE_VALUES: list[Any] = [
    "<script>alert(1)</script>",
    "\"quoted\" & 'single' <b>",
    "Zoë 🎉 \u202e reversed",
    "{{ contact.email }}",
    "  ",
    "",
    None,
    0,
    -12,
    2.5,
    10**30,
    True,
    ["a", "b"],
    {"nested": "dict"},
    "x" * 300_000,
]


def _jinja(source: str, context: dict[str, Any], *, html: bool) -> str | type[RenderError]:
    try:
        return render_string(source, context, html=html)
    except RenderError:
        return RenderError


def _spliced(source: str, *, html: bool) -> splice.SplicedPart | None:
    return splice.compile_part((HTML_ENV if html else TEXT_ENV).parse(source), html=html)


@pytest.mark.parametrize("html", [True, False])
@pytest.mark.parametrize("source", SPLICEABLE)
def test_spliceable_templates_print_what_jinja_prints(source: str, html: bool) -> None:
    part = _spliced(source, html=html)
    assert part is not None
    assert part.render(BASE) == _jinja(source, BASE, html=html)


@pytest.mark.parametrize("html", [True, False])
@pytest.mark.parametrize("source", NOT_SPLICEABLE)
def test_templates_beyond_printed_fields_are_left_to_jinja(source: str, html: bool) -> None:
    assert _spliced(source, html=html) is None


@pytest.mark.parametrize("source", PAYLOADS.values(), ids=list(PAYLOADS))
def test_hostile_templates_are_not_spliced(source: str) -> None:
    """Each is a syntax error (CompiledTemplate refuses it before splicing) or uses
    something beyond printed fields."""
    try:
        tree = HTML_ENV.parse(source)
    except TemplateSyntaxError:
        return
    assert splice.compile_part(tree, html=True) is None


@pytest.mark.parametrize("html", [True, False])
@pytest.mark.parametrize("value", HOSTILE_VALUES, ids=repr)
def test_hostile_values_are_printed_as_jinja_would_or_deferred(value: Any, html: bool) -> None:
    """Whatever a contact's field holds: the spliced output equals Jinja's, or the part
    defers to Jinja (None) — never a different text."""
    for source in (
        "<p>Dear {{ contact.first_name }},</p>",
        "{{ contact.first_name | default('friend') }}",
    ):
        context = {**BASE, "contact": {**BASE["contact"], "first_name": value}}
        part = _spliced(source, html=html)
        assert part is not None
        got = part.render(context)
        if got is not None:
            assert got == _jinja(source, context, html=html)
    # Escaping really happens in HTML, and only there.
    markup = _spliced("{{ contact.first_name }}", html=True)
    plain = _spliced("{{ contact.first_name }}", html=False)
    assert markup is not None and plain is not None
    context = {**BASE, "contact": {"first_name": "<b>&"}}
    assert markup.render(context) == "&lt;b&gt;&amp;"
    assert plain.render(context) == "<b>&"


def test_missing_values_and_odd_contexts_defer_to_jinja() -> None:
    part = _spliced("{{ contact.nickname }}", html=True)
    assert part is not None
    assert part.render(BASE) is None
    assert part.render({**BASE, "contact": "not a dict"}) is None
    assert part.render({}) is None
    defaulted = _spliced("{{ contact.nickname | default('you') }}", html=True)
    assert defaulted is not None
    assert (
        defaulted.render({})
        == "you"
        == _jinja("{{ contact.nickname | default('you') }}", {}, html=True)
    )


def test_compiled_template_splices_and_falls_back_with_the_same_errors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    compiled = templating.CompiledTemplate(
        subject="{{ contact.first_name }}, your check-up",
        html="<p>Hello {{ contact.first_name | default('there') }}</p>",
        text="Hello {{ contact.first_name }}\n{{ unsubscribe_url }}\n",
    )
    jinja_renders: list[str] = []
    real = templating._render_part

    def counting(*args: Any, **kwargs: Any) -> str:
        jinja_renders.append(args[2])
        return real(*args, **kwargs)

    monkeypatch.setattr(templating, "_render_part", counting)
    rendered = compiled.render(BASE)
    assert (rendered.subject, rendered.html, rendered.text) == (
        "Ann, your check-up",
        "<p>Hello Ann</p>",
        "Hello Ann\nhttps://x.test/u/t/\n",
    )
    assert jinja_renders == []  # spliced: Jinja never ran

    # A value splicing does not print (a list) sends every part through Jinja.
    odd = {**BASE, "contact": {"first_name": ["A"]}}
    rendered = compiled.render(odd)
    assert jinja_renders == ["subject", "HTML body", "text body"]
    assert rendered.subject == "['A'], your check-up"

    # A missing value: Jinja's error, naming the part, exactly as without splicing.
    with pytest.raises(RenderError, match=r"subject.*missing value"):
        compiled.render({**BASE, "contact": {}})


def test_html_escape_shortcut_is_markupsafe_escape() -> None:
    """Values without a character to escape are printed as they are; any other is
    escaped by markupsafe, so the output is Jinja's either way."""
    from markupsafe import escape

    for value in ["Ana", "", "a&b", "<i>", 'say "hi"', "O'Brien", "é ☃ >", "&amp;", "x" * 500]:
        assert splice._escape_html(value) == str(escape(value)), value
