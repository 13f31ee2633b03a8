"""The template library: healthcare starting templates (issue 19 item 2).

Each template is a fragment in this folder (``<slug>.html``) placed in one shared,
accessible layout (:func:`_layout`): a single-column design that is fluid below 600 px
without media queries (mail clients drop ``<style>`` blocks, and LuxMail inlines CSS),
``role="presentation"`` on layout tables, real headings, a language, 16 px body text
and colours with at least 4.5:1 contrast. The organization's locked footer
(``campaigns/content/footer.py``) closes every one. The text is original to LuxMail.

Merge fields guard missing values with ``default(…)`` or ``{% if … is defined %}``, so
no contact is skipped for a blank field; templates that read ``phi.*`` are PHI-bearing
and are sent only through a secure channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from campaigns.content.footer import FOOTER_HTML

_HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class LibraryTemplate:
    slug: str
    name: str
    subject: str
    description: str
    html: str


# slug, name, subject, description (what a marketer reads in the library list)
_ENTRIES = (
    (
        "appointment-reminder",
        "Appointment reminder",
        "{{ contact.first_name|default('Hello') }}, your appointment is coming up",
        "Reminds a patient of their next appointment (PHI: sent through a secure channel).",
    ),
    (
        "annual-checkup",
        "Annual check-up and flu shot",
        "Time for your annual check-up and flu shot",
        "Seasonal campaign inviting patients to book a check-up and a flu vaccination.",
    ),
    (
        "newsletter",
        "Patient newsletter",
        "News from {{ org.name }}",
        "Monthly newsletter with a feature story and two short items.",
    ),
    (
        "post-visit-survey",
        "Post-visit survey",
        "How was your visit, {{ contact.first_name|default('there') }}?",
        "Asks for feedback after a visit, with a one-click rating row.",
    ),
    (
        "new-service",
        "New service announcement",
        "Now available at {{ org.name }}: telehealth visits",
        "Announces a new service with its benefits and a call to action.",
    ),
    (
        "secure-message-waiting",
        "A secure message is waiting",
        "You have a new secure message",
        "Tells a patient a message waits in the portal; contains no health information.",
    ),
)


def _layout(*, title: str, body: str) -> str:
    layout = (_HERE / "_layout.html").read_text()
    return (
        layout.replace("<!-- title -->", title)
        .replace("<!-- body -->", body)
        .replace("<!-- footer -->", FOOTER_HTML)
    )


@cache
def library_templates() -> tuple[LibraryTemplate, ...]:
    """The starting templates, in the order the library page lists them."""
    return tuple(
        LibraryTemplate(
            slug=slug,
            name=name,
            subject=subject,
            description=description,
            html=_layout(title=name, body=(_HERE / f"{slug}.html").read_text().strip()),
        )
        for slug, name, subject, description in _ENTRIES
    )


def library_template(slug: str) -> LibraryTemplate | None:
    return next((t for t in library_templates() if t.slug == slug), None)
