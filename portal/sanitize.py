"""The portal shows a message's HTML only after nh3 (ammonia) has cleaned it.

Kept: text structure, tables, links (``http``, ``https``, ``mailto``, ``tel``, with
``rel="noopener noreferrer"``), images embedded as ``data:`` or served by LuxMail
itself, and a short list of harmless presentation properties in ``style`` attributes
(colours, fonts, spacing, borders, alignment — nothing that positions content over the
page or can name a URL). Dropped: scripts, event handlers, forms, frames, external
images (the portal page's CSP would block them anyway: nothing loads from elsewhere),
``<style>`` blocks and everything else.
"""

from __future__ import annotations

import copy

import nh3
from django.conf import settings

_TAGS = set(nh3.ALLOWED_TAGS) - {"map", "area"} | {"font"}
_ATTRIBUTES: dict[str, set[str]] = copy.deepcopy(nh3.ALLOWED_ATTRIBUTES)
for _tag in _TAGS:
    _ATTRIBUTES.setdefault(_tag, set()).update({"style", "align", "title", "dir"})
_ATTRIBUTES.setdefault("img", set()).update({"src", "alt", "width", "height"})
_ATTRIBUTES.setdefault("a", set()).update({"href"})
for _cell in ("td", "th", "table", "tr"):
    _ATTRIBUTES[_cell].update({"valign", "width", "bgcolor", "colspan", "rowspan"})
_ATTRIBUTES.setdefault("font", set()).update({"color", "face", "size"})

STYLE_PROPERTIES = {
    "color",
    "background-color",
    "font-family",
    "font-size",
    "font-style",
    "font-weight",
    "letter-spacing",
    "line-height",
    "text-align",
    "text-decoration",
    "text-transform",
    "vertical-align",
    "white-space",
    "width",
    "max-width",
    "min-width",
    "height",
    "margin",
    "margin-top",
    "margin-right",
    "margin-bottom",
    "margin-left",
    "padding",
    "padding-top",
    "padding-right",
    "padding-bottom",
    "padding-left",
    "border",
    "border-top",
    "border-right",
    "border-bottom",
    "border-left",
    "border-color",
    "border-style",
    "border-width",
    "border-radius",
    "border-collapse",
    "border-spacing",
}
_URL_SCHEMES = {"http", "https", "mailto", "tel", "data"}


def _local(url: str) -> bool:
    base = settings.LUXMAIL_BASE_URL.rstrip("/")
    if url.startswith("//"):
        return False
    return url.startswith("/") or url.startswith(base + "/")


def _filter(tag: str, attribute: str, value: str) -> str | None:
    stripped = value.strip()
    lowered = stripped.lower()
    if tag == "img" and attribute == "src":
        if lowered.startswith("data:image/") and not lowered.startswith("data:image/svg"):
            return stripped
        return stripped if _local(stripped) else None
    if attribute == "href" and lowered.startswith("data:"):
        return None
    return value


def sanitize_html(html: str) -> str:
    """The message's HTML as the portal may show it (a fragment, no document shell)."""
    return nh3.clean(
        html,
        tags=_TAGS,
        clean_content_tags={"script", "style", "title", "head"},
        attributes=_ATTRIBUTES,
        attribute_filter=_filter,
        url_schemes=_URL_SCHEMES,
        filter_style_properties=STYLE_PROPERTIES,
        link_rel="noopener noreferrer",
        strip_comments=True,
    )
