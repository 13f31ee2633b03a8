"""The portal shows a message's HTML only after nh3 (ammonia) has cleaned it.

Kept: text structure, tables, links (``http``, ``https``, ``mailto``, ``tel``, with
``rel="noopener noreferrer"``), images embedded as ``data:`` or served by LuxMail
itself, and a short list of harmless presentation properties in ``style`` attributes
(colours, fonts, spacing, borders, alignment — nothing that positions content over the
page or can name a URL). nh3 filters ``style`` by property name only, so every value
is checked here first (:func:`clean_style`): comments and CSS escapes are resolved as
a browser would, and only plain words, numbers, colours and ``rgb()``/``hsl()`` remain
— ``expression(...)``, ``url(...)`` (``javascript:``, ``data:``, …) and any other
function are dropped with their declaration. Dropped: scripts, event handlers, forms,
frames, external images (the portal page's CSP would block them anyway: nothing loads
from elsewhere), ``<style>`` blocks and everything else.
"""

from __future__ import annotations

import copy
import re

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


# A style attribute longer than this is dropped whole (nothing legitimate needs it).
_MAX_STYLE_CHARS = 4000
_MAX_DECLARATIONS = 64
_COMMENT = re.compile(r"/\*.*?(?:\*/|\Z)", re.S)
_ESCAPE = re.compile(r"\\(?:([0-9a-fA-F]{1,6})[ \t\r\n\f]?|(\r\n|[\n\r\f])|(.))", re.S)
_COLOUR_FUNCTION = re.compile(r"\b(?:rgba?|hsla?)\([0-9a-z.,%\s/+-]*\)")
_SAFE_VALUE = re.compile(r"[a-z0-9#%.,\s'\"!/+-]*")
_PROPERTY = re.compile(r"-?[a-z][a-z-]*")
# Belt and braces: none of these belongs in an allowed property's value.
_FORBIDDEN = ("expression", "url", "javascript", "vbscript", "behavior", "binding", "import")


def _unescape(match: re.Match[str]) -> str:
    hex_digits, newline, char = match.groups()
    if newline is not None:
        return ""
    if char is not None:
        return char
    code = int(hex_digits, 16)
    return "\ufffd" if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF else chr(code)


def _css_text(value: str) -> str:
    """``value`` as a CSS parser reads it: comments gone, escapes resolved."""
    return _ESCAPE.sub(_unescape, _COMMENT.sub("", value.replace("\x00", "")))


def _safe_value(value: str) -> bool:
    value = value.lower()
    if any(word in value for word in _FORBIDDEN):
        return False
    plain = _COLOUR_FUNCTION.sub("", value)
    if not _SAFE_VALUE.fullmatch(plain):  # other functions, "\\", ":", ";", "<", "@", …
        return False
    return value.count('"') % 2 == 0 and value.count("'") % 2 == 0


def clean_style(value: str) -> str:
    """The declarations of a ``style`` attribute that are safe to keep, normalized.

    Keeps ``property: value`` pairs whose property is allowed and whose value holds
    only words, numbers, colours and colour functions after comments and escapes are
    resolved (``exp/**/ression(…)``, ``\\65xpression(…)``, ``url( "javascript:…")``
    and ``url(data:…)`` all go). Linear in the attribute's length.
    """
    if len(value) > _MAX_STYLE_CHARS:
        return ""
    kept: list[str] = []
    for declaration in _css_text(value).split(";")[:_MAX_DECLARATIONS]:
        name, colon, raw = declaration.partition(":")
        name, raw = name.strip().lower(), " ".join(raw.split())
        if not colon or not raw or not _PROPERTY.fullmatch(name):
            continue
        if name in STYLE_PROPERTIES and _safe_value(raw):
            kept.append(f"{name}: {raw}")
    return "; ".join(kept)


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
    if attribute == "style":
        return clean_style(value) or None
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
