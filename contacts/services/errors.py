"""The errors contacts services raise: friendly, safe to show and log (no PHI)."""

from __future__ import annotations

from collections.abc import Sequence

from contacts.upsert import RowError


class ContactsError(Exception):
    """A user-caused problem; ``message`` is safe to show and to log (no PHI)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class ContactInvalid(ContactsError):
    """Input rows failed validation; ``errors`` lists every problem by row and field."""

    def __init__(self, errors: Sequence[RowError]):
        self.errors = list(errors)
        first = self.errors[0].message if self.errors else "invalid input"
        more = f" (and {len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
        super().__init__(f"{first}{more}")


class ContactExists(ContactsError):
    pass


class ContactHeld(ContactsError):
    """The contact is under legal hold (luxmail/holds.py): it may not be deleted."""


class ConsentError(ContactsError):
    pass


class SuppressionError(ContactsError):
    pass


class ListError(ContactsError):
    pass


class CustomFieldError(ContactsError):
    pass


MAX_BATCH = 5000
