"""The dev Outbox: what the local SMTP sink (``manage.py run_smtp_sink``) received.

Exists only with ``make run`` (``settings.LUXMAIL_DEV_OUTBOX``, true in the ``dev``
mode and never in production): every view answers 404 otherwise. The mail may carry
PHI, so the pages need a session verified by a second factor and the
``luxmail.view_phi`` permission, and every visit writes an audit event.

A message's HTML part is served by its own view with a locked-down CSP (no scripts,
no network except this site, ``sandbox``) into a sandboxed ``<iframe>``, so the page
shows the mail as a mail client would without letting it run anything.

Looking at a message is not the recipient opening it: every open-pixel and
click-redirect URL (``/t/o/…``, ``/t/c/…``, whatever host) is rewritten to an inert
``about:blank#…`` before the HTML or text is shown (:func:`neutralize_tracking`), so
the outbox never produces a tracking event, not even by clicking a link in the frame.
"""

from __future__ import annotations

import email.policy
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.parser import BytesParser
from functools import wraps
from pathlib import Path
from typing import Any

from csp.constants import NONE, SELF
from csp.decorators import csp
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_POST

from luxmail import audit, conf

PAGE_SIZE = 50
# Only names the sink writes: no path separators, no leading dot.
_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,200}\.eml$")

# Content types of the secure channels (RFC 3156 PGP/MIME, RFC 8551 S/MIME).
_SECURITY_TYPES = {
    "application/pgp-encrypted": "PGP/MIME version part",
    "application/pgp-signature": "PGP signature",
    "application/pgp-keys": "PGP public key",
    "application/pkcs7-signature": "S/MIME signature",
    "application/x-pkcs7-signature": "S/MIME signature",
    "application/pkcs7-mime": "S/MIME message",
    "application/x-pkcs7-mime": "S/MIME message",
}


# Open pixels and click redirects (reporting/tracking.py): ``<base>/t/o/<token>`` and
# ``<base>/t/c/<token>``, absolute or site-relative.
_TRACKING_URL = re.compile(r"(?:https?://[^\s\"'<>]*?)?/t/[oc]/[A-Za-z0-9_=-]+", re.IGNORECASE)
INERT_URL = "about:blank#tracking-disabled-in-outbox"


def neutralize_tracking(content: str) -> str:
    """``content`` with every tracking URL replaced by an inert one."""
    return _TRACKING_URL.sub(INERT_URL, content)


# --- reading the sink -------------------------------------------------------------------


def _sink() -> Path:
    return Path(settings.LUXMAIL_SINK_DIR)


def _path(name: str) -> Path:
    if not _NAME.match(name):
        raise Http404("No such message.")
    path = _sink() / name
    if not path.is_file():
        raise Http404("No such message.")
    return path


def _names_newest_first() -> list[str]:
    try:
        entries = [e for e in os.scandir(_sink()) if e.is_file() and _NAME.match(e.name)]
    except FileNotFoundError:
        return []
    entries.sort(key=lambda e: (e.stat().st_mtime_ns, e.name), reverse=True)
    return [e.name for e in entries]


def _parse(path: Path, *, headers_only: bool = False) -> EmailMessage:
    with path.open("rb") as handle:
        message = BytesParser(policy=email.policy.default).parse(handle, headersonly=headers_only)
    assert isinstance(message, EmailMessage)
    return message


def _header(message: EmailMessage, name: str) -> str:
    try:
        value = message.get(name)
    except (ValueError, IndexError, TypeError):
        # A header the policy cannot parse: show it raw rather than lose the message.
        raw = message.get_all(name, failobj=[])
        value = raw[0] if raw else None
    return "" if value is None else str(value)


def _date(message: EmailMessage, path: Path) -> datetime:
    try:
        header = message.get("Date")
        parsed = getattr(header, "datetime", None)
    except (ValueError, IndexError, TypeError):
        parsed = None
    if isinstance(parsed, datetime) and parsed.tzinfo is not None:
        return parsed
    return datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)


@dataclass(frozen=True)
class OutboxEntry:
    name: str
    sender: str
    recipients: str
    subject: str
    date: datetime
    size: int


def _entry(name: str) -> OutboxEntry:
    path = _sink() / name
    message = _parse(path, headers_only=True)
    recipients = _header(message, "To") or _header(message, "X-Envelope-To")
    return OutboxEntry(
        name=name,
        sender=_header(message, "From") or _header(message, "X-Envelope-From"),
        recipients=recipients,
        subject=_header(message, "Subject"),
        date=_date(message, path),
        size=path.stat().st_size,
    )


@dataclass
class Part:
    index: int
    content_type: str
    filename: str
    size: int
    security: str = ""


@dataclass
class Rendered:
    headers: list[tuple[str, str]]
    text: str | None
    html: str | None
    security: list[str] = field(default_factory=list)
    attachments: list[Part] = field(default_factory=list)


def _leaves(message: EmailMessage) -> Iterator[tuple[int, EmailMessage]]:
    """Every non-multipart part with a stable index (its position in ``walk()``)."""
    for index, part in enumerate(message.walk()):
        if not part.is_multipart():
            yield index, part


def _security_summary(message: EmailMessage) -> list[str]:
    found: list[str] = []
    for part in message.walk():
        ctype = part.get_content_type()
        params = {k.lower(): str(v).lower() for k, v in part.get_params(failobj=[])[1:]}
        if ctype == "multipart/encrypted" and params.get("protocol") == "application/pgp-encrypted":
            found.append("PGP/MIME encrypted (RFC 3156)")
        elif ctype == "multipart/signed":
            protocol = params.get("protocol", "")
            if "pgp" in protocol:
                found.append("PGP/MIME signed (RFC 3156)")
            elif "pkcs7" in protocol:
                found.append("S/MIME signed (RFC 8551)")
            else:
                found.append(f"Signed ({protocol or 'unknown protocol'})")
        elif ctype in ("application/pkcs7-mime", "application/x-pkcs7-mime"):
            smime_type = params.get("smime-type", "")
            if smime_type == "enveloped-data" or (
                not smime_type and "p7m" in part.get_filename("")
            ):
                found.append("S/MIME encrypted (RFC 8551)")
            elif smime_type == "signed-data":
                found.append("S/MIME signed, opaque (RFC 8551)")
            else:
                found.append(f"S/MIME ({smime_type or 'unspecified type'})")
        elif part.get_content_type() == "text/plain" and not part.is_multipart():
            try:
                body = part.get_content()
            except (LookupError, ValueError):
                continue
            if isinstance(body, str) and "-----BEGIN PGP MESSAGE-----" in body:
                found.append("Inline PGP encrypted")
    return list(dict.fromkeys(found))


def _content(part: EmailMessage) -> str | None:
    try:
        value = part.get_content()
    except (LookupError, ValueError):
        payload = part.get_payload(decode=True)
        return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else None
    return value if isinstance(value, str) else None


def _payload_bytes(part: EmailMessage) -> bytes:
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        return payload
    return part.as_bytes()


def _shown(part: Any) -> str | None:
    content = _content(part) if part is not None else None
    return neutralize_tracking(content) if content is not None else None


def render_message(message: EmailMessage) -> Rendered:
    """Headers, the text and HTML bodies, secure-channel markers and the other parts."""
    text_part = message.get_body(preferencelist=("plain",))
    html_part = message.get_body(preferencelist=("html",))
    bodies = {id(p) for p in (text_part, html_part) if p is not None}
    attachments: list[Part] = []
    for index, part in _leaves(message):
        if id(part) in bodies:
            continue
        ctype = part.get_content_type()
        attachments.append(
            Part(
                index=index,
                content_type=ctype,
                filename=part.get_filename("") or "",
                size=len(_payload_bytes(part)),
                security=_SECURITY_TYPES.get(ctype, ""),
            )
        )
    return Rendered(
        headers=[(name, str(value)) for name, value in message.raw_items()],
        text=_shown(text_part),
        html=_shown(html_part),
        security=_security_summary(message),
        attachments=attachments,
    )


# --- views ------------------------------------------------------------------------------


def outbox_view(view: Callable[..., Any]) -> Callable[..., HttpResponse]:
    """404 unless the outbox is enabled; then a verified, PHI-permitted session."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not conf.dev_outbox():
            raise Http404("The outbox exists only in the dev mode (make run).")
        return _guarded(request, *args, **kwargs)

    @login_required
    def _guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user: Any = request.user
        # The MFA middleware already sends unverified sessions to the second factor;
        # this check keeps the outbox closed even if that gate is misconfigured.
        if not user.is_verified() or not user.has_perm("luxmail.view_phi"):
            raise PermissionDenied("The outbox needs a verified session with PHI access.")
        return view(request, *args, **kwargs)

    return wrapped


@outbox_view
def outbox(request: HttpRequest) -> HttpResponse:
    names = _names_newest_first()
    page = Paginator(names, PAGE_SIZE).get_page(request.GET.get("page"))
    entries = []
    for name in page.object_list:
        try:
            entries.append(_entry(name))
        except FileNotFoundError:
            continue  # deleted (outbox cleared) since the directory was listed
    audit.record(
        "dev.outbox_list",
        actor=request.user,
        request=request,
        phi=True,
        details={"page": page.number, "shown": len(entries), "total": len(names)},
    )
    return render(
        request,
        "dev/outbox_list.html",
        {"page": page, "entries": entries, "total": len(names), "sink_dir": str(_sink())},
    )


@outbox_view
def outbox_message(request: HttpRequest, name: str) -> HttpResponse:
    path = _path(name)
    message = _parse(path)
    rendered = render_message(message)
    audit.record(
        "dev.outbox_read", actor=request.user, request=request, phi=True, details={"file": name}
    )
    return render(
        request,
        "dev/outbox_message.html",
        {"entry": _entry(name), "message": rendered},
    )


@outbox_view
@xframe_options_sameorigin
@csp(  # type: ignore[arg-type]  # django-csp types views as taking the request only
    {
        "default-src": [NONE],
        "img-src": [SELF, "data:"],
        # Mail HTML carries its styles inline (css-inline); nothing else is allowed.
        "style-src": ["'unsafe-inline'"],
        "font-src": [SELF, "data:"],
        "form-action": [NONE],
        "base-uri": [NONE],
        "frame-ancestors": [SELF],
        "sandbox": True,
    }
)
def outbox_html(request: HttpRequest, name: str) -> HttpResponse:
    """The HTML part alone, for the sandboxed iframe of :func:`outbox_message`."""
    message = _parse(_path(name))
    part = message.get_body(preferencelist=("html",))
    html = _shown(part)
    if html is None:
        raise Http404("This message has no HTML part.")
    response = HttpResponse(html, content_type="text/html; charset=utf-8")
    response["Referrer-Policy"] = "no-referrer"
    return response


@outbox_view
def outbox_part(request: HttpRequest, name: str, index: int) -> HttpResponse:
    """Download one part; always as an attachment, never rendered in this origin."""
    message = _parse(_path(name))
    for position, part in _leaves(message):
        if position == index:
            filename = part.get_filename("") or f"part-{index}.bin"
            safe = re.sub(r"[^A-Za-z0-9._-]", "_", filename)[:100] or f"part-{index}.bin"
            audit.record(
                "dev.outbox_download",
                actor=request.user,
                request=request,
                phi=True,
                details={"file": name, "part": index},
            )
            response = HttpResponse(_payload_bytes(part), content_type="application/octet-stream")
            response["Content-Disposition"] = f'attachment; filename="{safe}"'
            return response
    raise Http404("No such part.")


@outbox_view
@require_POST
def outbox_clear(request: HttpRequest) -> HttpResponse:
    names = _names_newest_first()
    for name in names:
        (_sink() / name).unlink(missing_ok=True)
    audit.record(
        "dev.outbox_clear", actor=request.user, request=request, details={"deleted": len(names)}
    )
    messages.success(request, f"Deleted {len(names)} messages from the outbox.")
    return redirect("dev_outbox")
