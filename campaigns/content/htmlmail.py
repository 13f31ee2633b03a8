"""HTML for mail clients: cleaning (nh3), CSS inlining (css-inline), and HTML → text.

The text converter is a small ``html.parser`` walker (html2text is GPL). It is run
on the template *source* when a template has no text part, so Jinja expressions in
text nodes survive into the generated text template and render per recipient like
the HTML does; link targets are kept as "text (url)".
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import css_inline
import nh3

# Tags and attributes that survive in campaign HTML: what mail clients render, no
# scripts, forms, frames or event handlers. ``style`` stays (inlined CSS lives there).
ALLOWED_TAGS = {
    "a", "abbr", "address", "b", "big", "blockquote", "br", "caption", "center", "code",
    "col", "colgroup", "dd", "del", "div", "dl", "dt", "em", "font", "h1", "h2", "h3",
    "h4", "h5", "h6", "hr", "i", "img", "ins", "li", "ol", "p", "pre", "s", "small",
    "span", "strike", "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th",
    "thead", "tr", "tt", "u", "ul",
}  # fmt: skip
_COMMON = {"style", "class", "id", "align", "valign", "dir", "lang", "title", "width", "height"}
ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    "*": _COMMON,
    "a": {"href", "name", "target"},
    "img": {"src", "alt", "border", "hspace", "vspace"},
    "table": {"border", "cellpadding", "cellspacing", "bgcolor", "role"},
    "td": {"bgcolor", "colspan", "rowspan", "nowrap"},
    "th": {"bgcolor", "colspan", "rowspan", "scope"},
    "tr": {"bgcolor"},
    "font": {"color", "face", "size"},
    "col": {"span"},
    "colgroup": {"span"},
    "ol": {"start", "type"},
}
URL_SCHEMES = {"http", "https", "mailto", "tel", "cid"}

_INLINER = css_inline.CSSInliner(keep_style_tags=False, load_remote_stylesheets=False)


def clean_html(html: str) -> str:
    """Remove everything a mail client should not see (scripts, handlers, forms…)."""
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer",
        strip_comments=True,
    )


def inline_css(html: str) -> str:
    """Move ``<style>`` rules into ``style`` attributes (clients drop ``<style>`` blocks)."""
    if "<style" not in html.lower():
        return html
    return _INLINER.inline(html)


def prepare_html(html: str) -> str:
    """Inline CSS first (it reads ``<style>``), then clean (which removes ``<style>``)."""
    return clean_html(inline_css(html))


# --- HTML → text ---------------------------------------------------------------------------

_BLOCK = {
    "p", "div", "table", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol",
    "blockquote", "pre", "address", "hr", "dl", "center",
}  # fmt: skip
_SKIP = {"style", "script", "head", "title"}


class _TextWriter(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip = 0
        self.href: list[str | None] = []
        self.link_text: list[list[str]] = []
        self.pre = 0
        self.list_stack: list[list[int]] = []

    def _write(self, text: str) -> None:
        if self.link_text:
            self.link_text[-1].append(text)
        else:
            self.out.append(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self.skip += 1
            return
        if tag in _BLOCK:
            self._write("\n\n")
        if tag == "pre":
            self.pre += 1
        if tag == "br":
            self._write("\n")
        elif tag in ("td", "th"):
            self._write(" ")
        elif tag in ("ul", "ol"):
            self.list_stack.append([0 if tag == "ol" else -1])
        elif tag == "li":
            marker = "* "
            if self.list_stack and self.list_stack[-1][0] >= 0:
                self.list_stack[-1][0] += 1
                marker = f"{self.list_stack[-1][0]}. "
            self._write("\n" + "  " * max(len(self.list_stack) - 1, 0) + marker)
        elif tag == "hr":
            self._write("-" * 40 + "\n\n")
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt:
                self._write(alt)
        elif tag == "a":
            self.href.append(dict(attrs).get("href"))
            self.link_text.append([])

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skip = max(self.skip - 1, 0)
            return
        if tag == "a" and self.link_text:
            text = "".join(self.link_text.pop()).strip()
            href = self.href.pop()
            if href and href != text and not href.startswith("#"):
                self._write(f"{text} ({href})" if text else href)
            else:
                self._write(text)
        elif tag in ("ul", "ol") and self.list_stack:
            self.list_stack.pop()
        if tag == "pre":
            self.pre = max(self.pre - 1, 0)
        if tag in _BLOCK:
            self._write("\n\n")

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        if not self.pre:
            data = re.sub(r"\s+", " ", data)
        self._write(data)


def html_to_text(html: str) -> str:
    """A readable plain-text rendering: paragraphs, lists, "text (url)" links."""
    writer = _TextWriter()
    writer.feed(html)
    writer.close()
    text = "".join(writer.out)
    lines = [line.strip() for line in text.splitlines()]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


# --- preparing the template once instead of every message ---------------------------------

_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
_PLACEHOLDER = "lmjinja{}x"
_TABLE_CONTEXT = {"table", "tbody", "thead", "tfoot", "tr"}
_CELL = {"td", "th", "caption"}
_URL_ATTRIBUTES = {"href", "src", "background", "action"}
_SAFE_URL_STARTS = {"{{ unsubscribe_url }}", "{{ preferences_url }}"}
_CSS_RISKY = re.compile(r"\[|:empty|:contains", re.IGNORECASE)


class _ContextCheck(HTMLParser):
    """Finds Jinja placeholders where preparing the source would change the output."""

    def __init__(self, constructs: list[str]) -> None:
        super().__init__(convert_charrefs=True)
        self.constructs = constructs
        self.stack: list[str] = []
        self.unsafe = False
        self.in_style = False

    def _index(self, text: str) -> list[int]:
        return [int(m) for m in re.findall(r"lmjinja(\d+)x", text)]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if "lmjinja" in name:
                self.unsafe = True
            if value and name in _URL_ATTRIBUTES and value.startswith("lmjinja"):
                first = self.constructs[self._index(value)[0]]
                if " ".join(first.split()) not in _SAFE_URL_STARTS:
                    self.unsafe = True
        if tag == "style":
            self.in_style = True
        if tag not in ("br", "img", "hr", "meta", "link", "col", "input"):
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self.in_style = False
        if tag in self.stack:
            while self.stack and self.stack.pop() != tag:
                pass

    def handle_data(self, data: str) -> None:
        indexes = self._index(data)
        if not indexes:
            return
        if self.in_style:
            self.unsafe = True
            return
        context = next((t for t in reversed(self.stack) if t in _TABLE_CONTEXT | _CELL), None)
        if context in _TABLE_CONTEXT:
            # Text directly inside a table is moved out of it by HTML parsers ("foster
            # parenting"), which would move a {% for %} away from the rows it wraps.
            self.unsafe = True


def prepare_template_html(source: str) -> str | None:
    """The HTML *template* with CSS inlined and cleaned once, or None when that is not
    equivalent to preparing every rendered message.

    Equivalent because autoescaping keeps rendered values from adding markup, so the
    structure of every message is the structure of the source. It is refused (None)
    when a Jinja construct sits where HTML parsing would move or drop it (directly in a
    table, in a ``<style>`` block or an attribute name), where cleaning depends on the
    value (a URL attribute starting with a template value other than our own links),
    or where CSS selectors read attributes; and when any construct does not come out
    of the preparation intact and in order.
    """
    constructs = _JINJA.findall(source)
    if not constructs:
        return prepare_html(source)
    if _CSS_RISKY.search(" ".join(re.findall(r"<style.*?</style>", source, re.S | re.I))):
        return None
    counter = iter(range(len(constructs)))
    substituted = _JINJA.sub(lambda _m: _PLACEHOLDER.format(next(counter)), source)
    check = _ContextCheck(constructs)
    check.feed(substituted)
    check.close()
    if check.unsafe:
        return None
    prepared = prepare_html(substituted)
    found = [int(m) for m in re.findall(r"lmjinja(\d+)x", prepared)]
    if found != list(range(len(constructs))):
        return None
    return re.sub(r"lmjinja(\d+)x", lambda m: constructs[int(m.group(1))], prepared)
