"""The template sandbox refuses escapes with readable errors and escapes contact data."""

from __future__ import annotations

import pytest

from campaigns.content import htmlmail, templating
from campaigns.content.templating import RenderError, TemplateValidationError, render_string

CTX = {
    "contact": {"first_name": "<b>Ann</b>", "email": "ann@example.test"},
    "phi": {"age": 50},
    "org": {"name": "Clinic", "postal_address": "1 Main St"},
    "unsubscribe_url": "https://x.test/u/t/",
    "preferences_url": "https://x.test/u/t/preferences/",
}


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{ ''.__class__.__mro__ }}", "'__class__' cannot be read from a text value"),
        ("{{ contact.first_name.upper() }}", "may not call methods"),
        ("{{ contact.email.split('@') }}", "may not call methods"),
        ("{{ range(10**5)|list|length }}", "range() is limited to 1,000 items"),
        ("{{ 'a' * 10000000 }}", "repeating a value is limited"),
        ("{{ '%s' % contact.email }}", "string formatting with % is not available"),
        (
            "{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}",
            "loops ran more than 20,000 times",
        ),
        ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "macros call themselves too deeply"),
        ("{{ contact.missing }}", "missing value"),
    ],
)
def test_sandbox_refuses_with_readable_errors(source: str, message: str) -> None:
    with pytest.raises(RenderError) as caught:
        render_string(source, CTX, html=True)
    assert message in str(caught.value)
    assert "Traceback" not in str(caught.value)


def test_attr_filter_is_not_available() -> None:
    with pytest.raises(TemplateValidationError) as caught:
        templating.validate(subject="Hi", html="{{ contact|attr('format') }}")
    assert "No filter named 'attr'" in str(caught.value)
    assert caught.value.lineno == 1


def test_html_in_contact_fields_is_escaped_and_safe_is_unavailable() -> None:
    assert render_string("Hi {{ contact.first_name }}", CTX, html=True) == (
        "Hi &lt;b&gt;Ann&lt;/b&gt;"
    )
    with pytest.raises(TemplateValidationError):
        templating.validate(subject="s", html="{{ contact.first_name|safe }}")


def test_text_parts_are_not_escaped() -> None:
    assert render_string("Hi {{ contact.first_name }}", CTX, html=False) == "Hi <b>Ann</b>"


def test_error_messages_do_not_quote_values() -> None:
    with pytest.raises(RenderError) as caught:
        render_string("{{ contact.email + 1 }}", CTX, html=True)
    assert "ann@example.test" not in str(caught.value)


def test_validation_reports_line_numbers_and_unknown_names() -> None:
    with pytest.raises(TemplateValidationError) as caught:
        templating.validate(subject="s", html="<p>ok</p>\n<p>{% if %}</p>")
    assert caught.value.lineno == 2
    assert str(caught.value).startswith("HTML body line 2:")
    with pytest.raises(TemplateValidationError) as caught:
        templating.validate(subject="s", html="<p>\n\n{{ patient.name }}</p>")
    assert "unknown variable 'patient'" in str(caught.value)
    assert caught.value.lineno == 3
    with pytest.raises(TemplateValidationError) as caught:
        templating.validate(subject="{{ phi.ssn }}", html="<p>x</p>")
    assert "unknown field 'phi.ssn'" in str(caught.value)
    assert caught.value.part == "subject"


def test_size_cap() -> None:
    with pytest.raises(TemplateValidationError) as caught:
        templating.validate(subject="s", html="x" * (templating.MAX_SOURCE_BYTES + 1))
    assert "the limit is" in str(caught.value)


def test_phi_detection() -> None:
    assert not templating.validate(subject="Hi", html="{{ contact.first_name }}").phi_bearing
    assert templating.validate(subject="Hi", html="<p>{{ phi.age }}</p>").phi_bearing
    assert templating.validate(
        subject="Hi", html="<p>x</p>", text="{% if phi.last_visit %}y{% endif %}"
    ).phi_bearing


def test_local_variables_and_loops_are_allowed() -> None:
    source = "{% set n = 3 %}{% for i in range(n) %}{{ loop.index }}{% endfor %}"
    templating.validate(subject="s", html=source)
    assert render_string(source, CTX, html=True) == "123"


def test_clean_and_inline() -> None:
    html = (
        "<html><head><style>p{color:red}</style></head><body>"
        '<p onclick="x()">Hi<script>alert(1)</script></p>'
        '<a href="javascript:alert(1)">x</a><form><input></form></body></html>'
    )
    out = htmlmail.prepare_html(html)
    assert 'style="color: red' in out or 'style="color:red' in out
    assert "script" not in out and "onclick" not in out and "javascript" not in out
    assert "<form" not in out


def test_html_to_text_keeps_jinja_and_links() -> None:
    text = htmlmail.html_to_text(
        '<h1>Hi {{ contact.first_name }}</h1><p>Visit <a href="{{ unsubscribe_url }}">'
        "here</a></p><ul><li>one</li><li>two</li></ul>"
    )
    assert "Hi {{ contact.first_name }}" in text
    assert "here ({{ unsubscribe_url }})" in text
    assert "* one" in text and "* two" in text


PREPARABLE = [
    "<html><head><style>p{color:red} .x{font-weight:bold}</style></head><body>"
    '<p class="x">Hi {{ contact.first_name }}</p>{% if phi.age %}<p>{{ phi.age }}</p>{% endif %}'
    '<a href="{{ unsubscribe_url }}">out</a><a href="https://a.example/?q={{ contact.email }}">'
    "q</a><table><tr><td>{% for i in range(2) %}<b>{{ i }}</b>{% endfor %}</td></tr></table>"
    "</body></html>",
    "<p>{{ contact.first_name }} &amp; {{ org.name }}<script>bad()</script></p>",
]
NOT_PREPARABLE = [
    "<table>{% for i in range(2) %}<tr><td>{{ i }}</td></tr>{% endfor %}</table>",
    '<a href="{{ contact.custom.link }}">x</a>',
    "<style>p { color: {{ contact.custom.colour }} }</style><p>x</p>",
    '<style>a[href^="https"] { color: red }</style><a href="{{ unsubscribe_url }}">x</a>',
]


@pytest.mark.parametrize("source", PREPARABLE)
def test_preparing_the_template_once_equals_preparing_each_message(source: str) -> None:
    once = htmlmail.prepare_template_html(source)
    assert once is not None
    for first in ["Ann", "<i>Bob</i>", "Zoë & co"]:
        ctx = {**CTX, "contact": {**CTX["contact"], "first_name": first}}
        per_message = htmlmail.prepare_html(render_string(source, ctx, html=True))
        assert render_string(once, ctx, html=True) == per_message


@pytest.mark.parametrize("source", NOT_PREPARABLE)
def test_sources_that_cannot_be_prepared_once_fall_back(source: str) -> None:
    assert htmlmail.prepare_template_html(source) is None


@pytest.mark.parametrize(
    ("html", "name", "lineno"),
    [
        ("<p>ok</p>\n{{ contact.__class__ }}", "__class__", 2),
        ("<p>\n\n{% set x = contact %}{{ x.__mro__ }}</p>", "__mro__", 3),
        ("{{ org['__globals__'] }}", "__globals__", 1),
        ("<p>a</p>\n<p>b</p>\n{{ contact|attr('__class__') }}", "__class__", 3),
        ("{% macro m() %}\n{{ m.__globals__ }}{% endmacro %}", "__globals__", 2),
    ],
)
def test_save_refuses_dunder_attributes_with_the_line(html: str, name: str, lineno: int) -> None:
    with pytest.raises(TemplateValidationError) as caught:
        templating.validate(subject="Hi", html=html)
    assert caught.value.lineno == lineno
    assert f"'{name}' is an internal attribute" in str(caught.value)
    assert str(caught.value).startswith(f"HTML body line {lineno}:")


def test_save_refuses_sources_too_costly_to_compile() -> None:
    with pytest.raises(TemplateValidationError) as caught:
        templating.validate(subject="Hi", html="<p>x</p>\n" + "{{ contact.first_name }}" * 1200)
    assert "more than 5,000 tags, names and operators" in str(caught.value)
    assert caught.value.lineno == 2
    with pytest.raises(TemplateValidationError) as caught:
        templating.validate(subject="Hi", html="{% if 1 %}" * 600 + "{% endif %}" * 600)
    assert "nests too deeply" in str(caught.value)
    # Python's own limits on the code Jinja generates (a SyntaxError, not a Jinja error).
    for source in (
        "{% for i in range(1) %}" * 25 + "{% endfor %}" * 25,
        "{% if 1 %}" * 100 + "{% endif %}" * 100,
    ):
        with pytest.raises(TemplateValidationError) as caught:
            templating.validate(subject="Hi", html=source)
        assert "nests too deeply" in str(caught.value)


def test_one_budget_covers_every_part_of_a_message() -> None:
    """Loop iterations are counted over subject, HTML and text together."""
    loop = "{% for i in range(1000) %}{% for j in range(8) %}{% endfor %}{% endfor %}"
    compiled = templating.CompiledTemplate(subject="s", html=loop, text=loop + loop)
    with pytest.raises(RenderError) as caught:
        compiled.render(CTX)
    assert "loops ran more than 20,000 times" in str(caught.value)
    assert caught.value.part == "text body"


def test_ordinary_templates_still_render() -> None:
    from campaigns.tests.hostile_templates import REALISTIC, REALISTIC_CONTEXT

    out = render_string(REALISTIC, REALISTIC_CONTEXT, html=True)
    assert "Hello Ann," in out and "2. Diabetes" in out and "YOUR PREFERENCES" in out
    assert render_string("{{ [1, 2] + [3] }}|{{ 'a' ~ 2 }}|{{ 2 ** 10 }}", CTX, html=False) == (
        "[1, 2, 3]|a2|1024"
    )
    assert render_string("{{ 'x' * 3 }}{{ 7 // 2 }}{{ 7 % 4 }}", CTX, html=False) == "xxx33"
