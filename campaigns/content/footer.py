"""The organization's locked footer block (issue 19 item 2).

Every visual-editor and library template carries this exact block: the postal address,
the unsubscribe and preferences links, and the organization's legal text. The block's
*source* never changes; what it prints comes from the organization settings (``org.*``,
set by Admins), so an Admin's edit reaches every template without re-saving them.

The editor shows it as a component that cannot be removed, moved, copied or edited
(``static/js/template_editor.js``), and the server refuses a template whose block is
missing or altered (:func:`footer_check`), so a hand-edited request cannot drop it.
"""

from __future__ import annotations

import enum

from campaigns.content.templating import TemplateValidationError

#: What marks the block; an HTML attribute the sandbox and the mail cleaner ignore.
FOOTER_MARKER = "data-luxmail-footer"

FOOTER_HTML = (
    '<table role="presentation" data-luxmail-footer="1" class="lm-footer" width="100%" '
    'cellpadding="0" cellspacing="0" border="0"><tr>'
    '<td style="padding:24px 16px;font-family:Arial,Helvetica,sans-serif;font-size:12px;'
    'line-height:18px;color:#4a4a4a;text-align:center">'
    '<p style="margin:0 0 8px">{{ org.name }} · {{ org.postal_address }}</p>'
    '<p style="margin:0 0 8px">{{ org.footer_text }}</p>'
    '<p style="margin:0"><a href="{{ unsubscribe_url }}" style="color:#4a4a4a">Unsubscribe</a>'
    ' · <a href="{{ preferences_url }}" style="color:#4a4a4a">Email preferences</a></p>'
    "</td></tr></table>"
)


class FooterState(enum.Enum):
    PRESENT = "present"
    MISSING = "missing"
    ALTERED = "altered"


class FooterError(TemplateValidationError):
    """A template's locked footer is missing or altered; ``str()`` tells the author why."""

    def __init__(self, message: str):
        super().__init__(message, part="HTML body")


MISSING_MESSAGE = (
    "The organization footer block (postal address, unsubscribe and preferences links, "
    "legal text) is missing. It is locked: open the template in the visual editor, which "
    "puts it back, or start from the template library."
)
ALTERED_MESSAGE = (
    "The organization footer block was altered. It is locked and must stay exactly as "
    "the organization set it; Admins change its text in Settings → Organization."
)


def footer_check(html: str) -> FooterState:
    """Whether ``html`` holds the locked footer exactly once and unchanged.

    Bounded by the template size limit (``templating.MAX_SOURCE_BYTES``): two substring
    counts, linear in the source.
    """
    markers = html.count(FOOTER_MARKER)
    if markers == 0:
        return FooterState.MISSING
    if markers == 1 and html.count(FOOTER_HTML) == 1:
        return FooterState.PRESENT
    return FooterState.ALTERED


def footer_require(html: str) -> None:
    """Raise :class:`FooterError` unless the locked footer is present and unchanged."""
    state = footer_check(html)
    if state is FooterState.MISSING:
        raise FooterError(MISSING_MESSAGE)
    if state is FooterState.ALTERED:
        raise FooterError(ALTERED_MESSAGE)


_BODY_END = "</body>"


def footer_insert(html: str) -> str:
    """``html`` with the locked footer added: just before the last ``</body>``, or at
    the end when there is none. Unchanged when the block is already there (missing or
    altered is for :func:`footer_check` to judge). Linear in the source."""
    if FOOTER_MARKER in html:
        return html
    at = html.lower().rfind(_BODY_END)
    if at < 0:
        return html + FOOTER_HTML
    return html[:at] + FOOTER_HTML + html[at:]
