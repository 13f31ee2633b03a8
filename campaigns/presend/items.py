"""One line of the pre-send check: a verdict, a sentence and where to fix it."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Verdict(StrEnum):
    PASS = "pass"  # noqa: S105 - a verdict, not a password
    WARN = "warn"
    FAIL = "fail"
    NOT_CHECKED = "not checked"
    PENDING = "checking"


@dataclass
class CheckItem:
    key: str
    label: str
    verdict: Verdict
    detail: str
    fix_url: str = ""
    fix_label: str = ""
    lines: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.verdict == Verdict.FAIL
