"""Defence in depth for log records: mask anything shaped like an email address.

PHI must never be logged in the first place (``tests/test_security_rules.py`` rejects
log calls that format PHI names, ``tests/test_logging_phi.py`` captures every record
across requests that handle PHI); this filter catches what slips through, e.g. a
third-party library that echoes an SMTP recipient in a message or an exception.
"""

from __future__ import annotations

import logging
import re

_EMAIL = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")
_FORMATTER = logging.Formatter()


def redact(text: str) -> str:
    return _EMAIL.sub("[redacted-email]", text)


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
