"""Content heuristics of the pre-send check, over the message rendered with sample data."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from campaigns.presend.items import CheckItem, Verdict

# Gmail clips a message whose HTML part is larger than this and hides the rest
# (the unsubscribe link and the open pixel with it) behind "View entire message".
GMAIL_CLIP_BYTES = 102 * 1024
SUBJECT_WARN_LENGTH = 90
# Phrases spam filters score (SpamAssassin's and the ESPs' published lists, abridged).
SPAM_PHRASES = (
    "100% free", "act now", "as seen on", "buy now", "cash bonus", "click here", "double your",
    "earn money", "free gift", "free money", "guaranteed", "limited time", "miracle",
    "no cost", "no obligation", "once in a lifetime", "risk-free", "risk free", "special promotion",
    "urgent", "winner", "you have been selected", "$$$", "lose weight",
)  # fmt: skip


class _Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.images = 0
        self.without_alt: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "img":
            return
        values = dict(attrs)
        width, height = values.get("width"), values.get("height")
        if width == "1" and height == "1":
            return  # a tracking pixel, not content
        self.images += 1
        if values.get("alt") is None:  # alt="" is right for decorative images
            self.without_alt.append((values.get("src") or "")[:120])


def check_images(html: str, fix_url: str) -> CheckItem:
    parser = _Images()
    parser.feed(html)
    parser.close()
    label = "Image alt text"
    if parser.without_alt:
        count = len(parser.without_alt)
        return CheckItem(
            "alt",
            label,
            Verdict.WARN,
            f"{count} image{'s' if count != 1 else ''} without alt text: screen readers and "
            "clients that block images show nothing.",
            fix_url,
            "Edit the template",
            lines=parser.without_alt[:10],
        )
    if not parser.images:
        return CheckItem("alt", label, Verdict.PASS, "The message has no images.")
    return CheckItem("alt", label, Verdict.PASS, f"All {parser.images} images have alt text.")


def check_size(html: str, fix_url: str) -> CheckItem:
    size = len(html.encode("utf-8"))
    kb = size / 1024
    label = "HTML size"
    if size > GMAIL_CLIP_BYTES:
        return CheckItem(
            "size",
            label,
            Verdict.WARN,
            f"{kb:.0f} KB: Gmail clips messages over 102 KB, hiding the rest (the unsubscribe "
            "link included).",
            fix_url,
            "Edit the template",
        )
    if size > GMAIL_CLIP_BYTES * 0.8:
        return CheckItem(
            "size",
            label,
            Verdict.WARN,
            f"{kb:.0f} KB: close to Gmail's 102 KB clipping limit (tracking links add more).",
            fix_url,
            "Edit the template",
        )
    return CheckItem("size", label, Verdict.PASS, f"{kb:.0f} KB (Gmail clips above 102 KB).")


def check_footer(
    *, html: str, text: str, unsubscribe_url: str, postal_address: str, settings_url: str
) -> CheckItem:
    label = "Unsubscribe link and postal address"
    address = " ".join(postal_address.split())
    if not address:
        return CheckItem(
            "footer",
            label,
            Verdict.FAIL,
            "The organization has no postal address; marketing mail must carry one (CAN-SPAM).",
            settings_url,
            "Organization settings",
        )
    missing = []
    if unsubscribe_url not in html or unsubscribe_url not in text:
        missing.append("unsubscribe link")
    flat_html = " ".join(html.split())
    if address not in flat_html and address.replace("&", "&amp;") not in flat_html:
        missing.append("postal address")
    if missing:
        return CheckItem(
            "footer",
            label,
            Verdict.FAIL,
            f"The message lacks its {' and '.join(missing)}.",
            settings_url,
            "Organization settings",
        )
    return CheckItem("footer", label, Verdict.PASS, "Both are in the HTML and the text part.")


_WORDS = re.compile(r"[A-Za-z]{2,}")


def check_subject(subject: str, fix_url: str) -> CheckItem:
    label = "Subject line"
    subject = subject.strip()
    if not subject:
        return CheckItem(
            "subject", label, Verdict.FAIL, "The subject is empty.", fix_url, "Edit the template"
        )
    problems = []
    if len(subject) > SUBJECT_WARN_LENGTH:
        problems.append(
            f"{len(subject)} characters: inboxes show about 40 to 90, so the end is cut off"
        )
    words = _WORDS.findall(subject)
    capitals = [w for w in words if w.isupper() and len(w) > 2]
    if words and len(capitals) >= max(2, len(words) // 2):
        problems.append("mostly capital letters")
    if subject.count("!") > 1:
        problems.append("several exclamation marks")
    if problems:
        return CheckItem(
            "subject", label, Verdict.WARN, "; ".join(problems) + ".", fix_url, "Edit the template"
        )
    return CheckItem("subject", label, Verdict.PASS, f"{len(subject)} characters.")


def check_spam_words(*, subject: str, text: str, fix_url: str) -> CheckItem:
    label = "Spam-trigger phrases"
    haystack = f"{subject}\n{text}".lower()
    found = [phrase for phrase in SPAM_PHRASES if phrase in haystack]
    words = len(text.split())
    if found:
        return CheckItem(
            "spam",
            label,
            Verdict.WARN,
            "Phrases spam filters score: " + ", ".join(f"“{p}”" for p in found) + ".",
            fix_url,
            "Edit the template",
        )
    if words < 20:
        return CheckItem(
            "spam",
            label,
            Verdict.WARN,
            f"Only {words} words of text: filters distrust image-only or near-empty mail.",
            fix_url,
            "Edit the template",
        )
    return CheckItem("spam", label, Verdict.PASS, "No common trigger phrases.")


def check_locked_footer(*, has_footer: bool, marketing: bool, fix_url: str) -> CheckItem:
    """Marketing may only use a template carrying the organization's locked footer
    (``EmailTemplate.has_locked_footer``); an Admin cannot override this item."""
    label = "Organization footer"
    if not marketing:
        return CheckItem(
            "locked_footer", label, Verdict.PASS, "Not needed: this is not a marketing message."
        )
    if not has_footer:
        return CheckItem(
            "locked_footer",
            label,
            Verdict.FAIL,
            "The template lacks the organization's locked footer (postal address, unsubscribe "
            "and preferences links, legal text), so it cannot be used for marketing.",
            fix_url,
            "Add the organization footer",
        )
    return CheckItem(
        "locked_footer", label, Verdict.PASS, "The template carries the locked footer block."
    )
