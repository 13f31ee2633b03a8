"""Defence in depth for log records: mask anything shaped like an email address.

PHI must never be logged in the first place (``tests/test_security_rules.py`` rejects
log calls that format PHI names, ``tests/test_logging_phi.py`` captures every record
across requests that handle PHI); this filter catches what slips through, e.g. a
third-party library that echoes an SMTP recipient in a message or an exception.

Credentials in URLs (``redis://:secret@redis.internal:6379/0``, Celery prints its
broker URL) are masked first, keeping scheme, user, host, port and path readable:
``user:secret@host`` would otherwise look like an address and swallow the host.
"""

from __future__ import annotations

import logging
import re

_EMAIL = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")
# A URL: scheme, "://", the authority (up to the first / ? # or space), then the rest.
_URL = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)([^/?#\s]*)([^\s]*)")
_FORMATTER = logging.Formatter()


def _redact_emails(text: str) -> str:
    return _EMAIL.sub("[redacted-email]", text)


def _redact_url(match: re.Match[str]) -> str:
    """The password of a URL masked; scheme, user, host, port and path kept."""
    scheme, authority, rest = match.groups()
    userinfo, at, host = authority.rpartition("@")
    if at:
        user, colon, _password = userinfo.partition(":")
        authority = f"{_redact_emails(user)}{':***' if colon else ''}@{host}"
    return f"{scheme}{authority}{_redact_emails(rest)}"


def redact(text: str) -> str:
    parts = []
    position = 0
    for match in _URL.finditer(text):
        parts.append(_redact_emails(text[position : match.start()]))
        parts.append(_redact_url(match))
        position = match.end()
    parts.append(_redact_emails(text[position:]))
    return "".join(parts)


class RedactPHIFilter(logging.Filter):
    """Rewrites the message, the traceback text and the stack text of each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            # Formatters reuse exc_text when it is set, so the redacted text is what
            # every handler prints.
            record.exc_text = _FORMATTER.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True
