"""Outbound webhook payloads, signatures and HTTP transport (docs/api.md#webhooks).

Everything here is free of database access, so the send pipeline can build payloads
with plain ids and the signature recipe can be tested exactly as documented.

* :func:`build_payload` — the only way to make a payload; it accepts ids, codes and
  times, nothing that can hold PHI.
* :func:`sign` / :func:`verify` — ``X-LuxMail-Signature: t=<unix>,v1=<hex>`` where
  ``hex = HMAC-SHA256(secret, f"{t}.{body}")``.
* :func:`post` — one HTTPS POST, no redirects followed, a short failure description
  that never includes the response body.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import secrets
import ssl
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from reporting.classification import Verdict

SIGNATURE_HEADER = "X-LuxMail-Signature"
SIGNATURE_VERSION = "v1"
SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
# Receivers should refuse signatures older than this (replay protection).
DEFAULT_TOLERANCE_SECONDS = 300
USER_AGENT = "LuxMail-Webhooks/1"

PAYLOAD_KEYS = frozenset({"id", "type", "created_at", "data"})
DATA_KEYS = frozenset(
    {
        "message_id",
        "campaign_id",
        "campaign_marketing_id",
        "contact_external_id",
        "event_time",
        "classification",
        "test",
    }
)
CLASSIFICATION_KEYS = frozenset({"label", "reason", "ruleset_version", "device_unknown"})
# Added with ruleset 2026.12.1 (issue #15); "" unless the label is automated.
OPTIONAL_CLASSIFICATION_KEYS = frozenset({"automation_kind"})
_MAX_ID_LENGTH = 200


class WebhookPayloadError(ValueError):
    """A payload field could carry something other than an id or a code."""


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise WebhookPayloadError("Webhook times must be timezone-aware.")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _identifier(name: str, value: int | str | uuid.UUID | None) -> int | str | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, uuid.UUID):
        return str(value)
    if not isinstance(value, str):
        raise WebhookPayloadError(f"{name} must be an id (int, str or UUID).")
    if len(value) > _MAX_ID_LENGTH or "@" in value or "\n" in value:
        # An e-mail address or free text is not an identifier; refuse rather than leak.
        raise WebhookPayloadError(f"{name} must be an opaque identifier.")
    return value


def _classification(value: Verdict | Mapping[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    data = value.as_dict() if isinstance(value, Verdict) else dict(value)
    if not CLASSIFICATION_KEYS <= set(data) <= CLASSIFICATION_KEYS | OPTIONAL_CLASSIFICATION_KEYS:
        raise WebhookPayloadError(
            f"classification must have exactly {sorted(CLASSIFICATION_KEYS)}"
            f" (and optionally {sorted(OPTIONAL_CLASSIFICATION_KEYS)})."
        )
    return {
        "label": str(data["label"]),
        "reason": str(data["reason"]),
        "automation_kind": str(data.get("automation_kind", "")),
        "ruleset_version": str(data["ruleset_version"]),
        "device_unknown": bool(data["device_unknown"]),
    }


def build_payload(
    *,
    event_type: str,
    message_id: int | str | uuid.UUID | None,
    campaign_id: int | str | uuid.UUID | None,
    campaign_marketing_id: str | None,
    contact_external_id: str | None,
    event_time: datetime,
    classification: Verdict | Mapping[str, Any] | None = None,
    test: bool = False,
    event_id: str | None = None,
    created_at: datetime | None = None,
) -> dict[str, Any]:
    """The JSON payload of one event. Ids, codes and times only — never PHI.

    ``event_id`` (default: a new UUID) is the same for every endpoint receiving the
    event, so receivers can de-duplicate. Raises :class:`WebhookPayloadError` for a
    value that is not an identifier (e.g. an e-mail address as external id).
    """
    data: dict[str, Any] = {
        "message_id": _identifier("message_id", message_id),
        "campaign_id": _identifier("campaign_id", campaign_id),
        "campaign_marketing_id": _identifier("campaign_marketing_id", campaign_marketing_id),
        "contact_external_id": _identifier("contact_external_id", contact_external_id),
        "event_time": _iso(event_time),
        "classification": _classification(classification),
    }
    if test:
        data["test"] = True
    return {
        "id": event_id or f"evt_{uuid.uuid4().hex}",
        "type": event_type,
        "created_at": _iso(created_at or datetime.now(UTC)),
        "data": data,
    }


def check_payload(payload: Mapping[str, Any]) -> None:
    """Refuse a payload that :func:`build_payload` could not have made."""
    if set(payload) != PAYLOAD_KEYS or not isinstance(payload.get("data"), Mapping):
        raise WebhookPayloadError("Build webhook payloads with reporting.webhooks.build_payload().")
    extra = set(payload["data"]) - DATA_KEYS
    if extra:
        raise WebhookPayloadError(f"Unexpected webhook data fields: {', '.join(sorted(extra))}.")


def encode(payload: Mapping[str, Any]) -> bytes:
    """The exact bytes we send and sign (compact JSON, sorted keys, UTF-8)."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


# --- signatures ---------------------------------------------------------------------------


def signature(secret: str, timestamp: int, body: bytes) -> str:
    message = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secrets_: Iterable[str], body: bytes, *, timestamp: int | None = None) -> str:
    """The ``X-LuxMail-Signature`` value: one ``v1=`` per active secret (rotation)."""
    t = int(time.time()) if timestamp is None else timestamp
    parts = [f"t={t}"] + [f"{SIGNATURE_VERSION}={signature(s, t, body)}" for s in secrets_]
    return ",".join(parts)


def verify(
    secret: str,
    header: str,
    body: bytes,
    *,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """True if ``header`` signs ``body`` with ``secret`` within ``tolerance`` seconds."""
    timestamp: int | None = None
    candidates: list[str] = []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == SIGNATURE_VERSION:
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = signature(secret, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)


# --- transport ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PostResult:
    ok: bool
    status_code: int | None
    error: str  # our own short description, never the response body


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a redirect is a failure: the receiver must answer at the configured URL


def post(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    timeout: float = 10.0,
    ssl_context: ssl.SSLContext | None = None,
) -> PostResult:
    """POST ``body`` to ``url``; 2xx is success. Never raises for network errors."""
    request = urllib.request.Request(url, data=body, method="POST")  # noqa: S310 - http(s) only, validated at save
    for name, value in headers.items():
        request.add_header(name, value)
    opener = urllib.request.build_opener(
        _NoRedirect(),
        urllib.request.HTTPSHandler(context=ssl_context or ssl.create_default_context()),
    )
    try:
        with opener.open(request, timeout=timeout) as response:
            response.read(1024)
            status = int(response.status)
    except urllib.error.HTTPError as error:
        return PostResult(
            False,
            error.code,
            f"HTTP {error.code} {http.client.responses.get(error.code, '')}".strip(),
        )
    except urllib.error.URLError as error:
        return PostResult(False, None, f"Connection failed: {_reason(error.reason)}")
    except TimeoutError:
        return PostResult(False, None, f"No response within {timeout:g} s")
    except (http.client.HTTPException, OSError) as error:
        return PostResult(False, None, f"Connection failed: {type(error).__name__}")
    if 200 <= status < 300:
        return PostResult(True, status, "")
    return PostResult(
        False, status, f"HTTP {status} {http.client.responses.get(status, '')}".strip()
    )


def _reason(reason: object) -> str:
    if isinstance(reason, ssl.SSLError):
        return f"TLS error ({reason.reason or type(reason).__name__})"
    if isinstance(reason, TimeoutError):
        return "timed out"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return type(reason).__name__ if not isinstance(reason, str) else reason[:120]
