"""Who is asking: the client address of a request, by the deployment's proxy rule."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from luxmail import conf


def client_ip(meta: Mapping[str, Any]) -> str:
    """The client's address from a request's ``META``: X-Forwarded-For only as far as
    ``LUXMAIL_PROXY_COUNT`` trusted proxies put it there (the sign-in lockout's rule)."""
    proxies = conf.proxy_count()
    if proxies:
        forwarded = [part.strip() for part in meta.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [part for part in forwarded if part]
        if len(forwarded) >= proxies:
            return forwarded[-proxies][:45]
    return str(meta.get("REMOTE_ADDR", ""))[:45]
