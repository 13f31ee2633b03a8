"""The preheader: the hidden preview text inbox lists show after the subject.

Rendered as the usual hidden span at the start of the HTML body, followed by
zero-width filler so clients do not pull body text into the preview after it. The
text is plain (a campaign setting, not template source): it is HTML-escaped and its
braces become character references, so it can never open a Jinja2 expression in the
template it is inserted into.
"""

from __future__ import annotations

import html as html_lib
import re

MAX_LENGTH = 200
# Filler after the text: "zero-width non-joiner, non-breaking space" pairs, the
# common way to stop Gmail and Apple Mail from appending the first body text.
_FILLER = "&#847;&zwnj;&nbsp;" * 40
_BODY_OPEN = re.compile(r"<body\b[^>]*>", re.IGNORECASE)
_STYLE = (
    "display:none !important;visibility:hidden;mso-hide:all;font-size:1px;line-height:1px;"
    "max-height:0;max-width:0;opacity:0;overflow:hidden;color:transparent"
)


def normalize(text: str) -> str:
    """One line, single spaces, at most :data:`MAX_LENGTH` characters."""
    return " ".join(text.split())[:MAX_LENGTH]


def preheader_html(text: str) -> str:
    """The hidden span for ``text`` (template-safe: no ``{``, ``}``, ``<`` survive)."""
    text = normalize(text)
    if not text:
        return ""
    escaped = html_lib.escape(text, quote=True).replace("{", "&#123;").replace("}", "&#125;")
    return f'<span class="preheader" style="{_STYLE}">{escaped}{_FILLER}</span>'


def with_preheader(html: str, text: str) -> str:
    """``html`` (template source) with the preheader span first in the body.

    After the ``<body>`` tag when there is one, else at the very start. Empty text
    returns ``html`` unchanged.
    """
    span = preheader_html(text)
    if not span:
        return html
    opening = _BODY_OPEN.search(html)
    if opening is None:
        return span + "\n" + html
    at = opening.end()
    return html[:at] + "\n" + span + html[at:]
