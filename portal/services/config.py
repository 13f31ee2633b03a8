"""Portal limits and settings, and the errors portal services raise (friendly, PHI-free)."""

from __future__ import annotations

from luxmail import conf

CODE_DIGITS = 6
# The audit actor of what a recipient does in the portal (they are not staff users).
RECIPIENT = "portal-recipient"
MAX_REPLY_CHARS = 10_000
MAX_REPLIES_PER_MESSAGE = 20

# The tunable limits live in luxmail/conf.py (LUXMAIL_PORTAL_*, docs/operations.md).
code_ttl = conf.portal_code_seconds
code_interval = conf.portal_code_interval_seconds
codes_per_hour = conf.portal_codes_per_hour
max_attempts = conf.portal_max_attempts
idle_seconds = conf.portal_idle_seconds


# --- errors ------------------------------------------------------------------------------


class PortalError(Exception):
    """Something the recipient can see; ``str()`` is a friendly sentence (no PHI)."""


class PortalUnavailable(PortalError):
    """The message is revoked, expired or locked (``state`` says which)."""

    def __init__(self, state: str) -> None:
        super().__init__(state)
        self.state = state


class PortalRateLimited(PortalError):
    def __init__(self, seconds: int) -> None:
        super().__init__(
            f"A code was sent recently. You can ask for a new one in {max(seconds, 1)} seconds."
        )
        self.seconds = seconds


class PortalNoCode(PortalError):
    def __init__(self) -> None:
        super().__init__(
            "There is no valid code for this message: it was used, it expired (codes last "
            "10 minutes) or none was requested. Ask for a new code."
        )


class PortalVerifyFailed(PortalError):
    def __init__(self, remaining: int, *, with_birth_date: bool) -> None:
        what = "The code or the date of birth" if with_birth_date else "The code"
        super().__init__(
            f"{what} is not correct. {remaining} attempt{'s' if remaining != 1 else ''} left "
            "before access to this message is locked."
        )
        self.remaining = remaining


class PortalDeliveryFailed(PortalError):
    def __init__(self) -> None:
        super().__init__("We could not send the code just now. Please try again in a few minutes.")


class PortalReplyInvalid(PortalError):
    pass
