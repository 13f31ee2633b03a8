"""Django's e-mail backend for LuxMail's own notices, through the configured relay.

Campaign mail has its own pipeline (``campaigns/``); this backend carries what Django
itself sends (``django.core.mail``), over the same relay settings
(``LUXMAIL_SMTP_*``, docs/operations.md). TLS is verified against the system trust
store or ``LUXMAIL_SMTP_CA_FILE``; with ``starttls`` a relay that does not offer
STARTTLS is refused (Python's ``smtplib`` raises), never used in plain text.
"""

from __future__ import annotations

import ssl
from functools import cached_property
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.mail.backends import smtp

from luxmail import conf

SECURITY_MODES = ("starttls", "implicit", "none")


class RelayEmailBackend(smtp.EmailBackend):
    def __init__(self, fail_silently: bool = False, **kwargs: Any) -> None:
        security = settings.LUXMAIL_SMTP_SECURITY
        if security not in SECURITY_MODES:
            raise ImproperlyConfigured(
                f"LUXMAIL_SMTP_SECURITY must be one of {', '.join(SECURITY_MODES)}."
            )
        kwargs.setdefault("host", settings.LUXMAIL_SMTP_HOST)
        kwargs.setdefault("port", settings.LUXMAIL_SMTP_PORT)
        kwargs.setdefault("username", settings.LUXMAIL_SMTP_USER or "")
        kwargs.setdefault("password", settings.LUXMAIL_SMTP_PASSWORD or "")
        kwargs.setdefault("use_tls", security == "starttls")
        kwargs.setdefault("use_ssl", security == "implicit")
        kwargs.setdefault("timeout", conf.smtp_timeout())
        super().__init__(fail_silently=fail_silently, **kwargs)

    @cached_property
    def ssl_context(self) -> ssl.SSLContext:
        # Verifying: certificate chain and host name (create_default_context's defaults).
        return ssl.create_default_context(cafile=settings.LUXMAIL_SMTP_CA_FILE)
