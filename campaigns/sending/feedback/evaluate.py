"""Score a parser against the labelled corpus (``tests/corpora/bounces``).

Used by ``bench/bounces.py`` (figures and speed) and by the corpus regression test
(``campaigns/tests/test_feedback_corpus.py``, accuracy only). Pure: no database.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from campaigns.sending.feedback.types import SCOPE, Feedback, FeedbackKind, Reason, Scope

CORPUS = Path(__file__).resolve().parents[3] / "tests" / "corpora" / "bounces"


@dataclass
class Score:
    mails: int = 0
    refused: int = 0  # raised for a labelled mail (target 0)
    kind_right: int = 0
    bounces: int = 0  # labelled bounces with at least one recipient
    recipient_right: int = 0  # every labelled recipient found, and no other
    recipients: int = 0  # labelled recipients
    recipients_found: int = 0
    status_labelled: int = 0
    status_class_right: int = 0
    reasons_labelled: int = 0
    reason_right: int = 0
    hard_right: int = 0
    sender_side: int = 0
    sender_side_hard: int = 0  # sender-side refusals we call hard (target 0)
    auth_reports: int = 0
    auth_reports_as_complaints: int = 0  # target 0
    misses: list[str] = field(default_factory=list)

    def pct(self, part: int, whole: int) -> float:
        return 100.0 * part / whole if whole else 100.0

    def lines(self) -> list[str]:
        return [
            f"mails                     {self.mails}",
            f"parse rate                {self.pct(self.mails - self.refused, self.mails):6.1f} %"
            f"  ({self.refused} refused)",
            f"kind right                {self.pct(self.kind_right, self.mails):6.1f} %",
            f"right recipient(s)        {self.pct(self.recipient_right, self.bounces):6.1f} %"
            f"  ({self.recipient_right}/{self.bounces} bounces;"
            f" {self.recipients_found}/{self.recipients} recipients found)",
            f"status class agreement    "
            f"{self.pct(self.status_class_right, self.status_labelled):6.1f} %",
            f"reason accuracy           "
            f"{self.pct(self.reason_right, self.reasons_labelled):6.1f} %",
            f"hard/soft agreement       {self.pct(self.hard_right, self.reasons_labelled):6.1f} %",
            f"sender-side counted hard  {self.sender_side_hard} of {self.sender_side}",
            f"auth-failure as complaint {self.auth_reports_as_complaints} of {self.auth_reports}",
        ]


def labels(corpus: Path = CORPUS) -> list[dict]:
    return json.loads((corpus / "labels.json").read_text())


def score(parse: Callable[[bytes], Feedback | None], corpus: Path = CORPUS) -> Score:
    """``parse`` returns a Feedback, or None/raises when it refuses the mail."""
    result = Score()
    for label in labels(corpus):
        raw = (corpus / label["file"]).read_bytes()
        result.mails += 1
        try:
            got = parse(raw)
        except Exception:  # a refused mail is what is measured here
            got = None
        if got is None:
            result.refused += 1
            result.misses.append(f"{label['file']}: refused")
            _count_labels(result, label)
            continue
        _compare(result, label, got)
    return result


def _count_labels(result: Score, label: dict) -> None:
    findings = [f for f in label.get("findings", []) if f.get("recipient")]
    if label["kind"] == "bounce" and findings:
        result.bounces += 1
        result.recipients += len(findings)
        for finding in findings:
            if finding.get("reason") and SCOPE[Reason(finding["reason"])] is Scope.SENDER:
                result.sender_side += 1
    if label["kind"] == FeedbackKind.AUTH_FAILURE_REPORT:
        result.auth_reports += 1


def _compare(result: Score, label: dict, got: Feedback) -> None:
    _count_labels(result, label)
    findings = [f for f in label.get("findings", []) if f.get("recipient")]
    nameless_bounce = label["kind"] == "bounce" and not findings
    if got.kind == label["kind"] or (nameless_bounce and got.kind == FeedbackKind.UNRECOGNIZED):
        # A bounce naming no recipient address is, to LuxMail, mail it cannot read.
        result.kind_right += 1
    else:
        result.misses.append(f"{label['file']}: kind {got.kind} (label {label['kind']})")
    if label["kind"] == FeedbackKind.AUTH_FAILURE_REPORT and got.kind == FeedbackKind.COMPLAINT:
        result.auth_reports_as_complaints += 1
    if label["kind"] != "bounce" or not findings:
        return
    ours = {f.recipient: f for f in got.findings}
    wanted = {f["recipient"] for f in findings}
    if wanted == set(ours):
        result.recipient_right += 1
    else:
        result.misses.append(f"{label['file']}: recipients {sorted(ours)} (label {sorted(wanted)})")
    for expected in findings:
        finding = ours.get(expected["recipient"])
        if finding is None:
            continue
        result.recipients_found += 1
        if not expected.get("reason"):
            continue  # recipient-only label (flufl.bounce's test expectations)
        result.reasons_labelled += 1
        sender_side = SCOPE[Reason(expected["reason"])] is Scope.SENDER
        if expected.get("status"):
            result.status_labelled += 1
            if finding.status[:1] == expected["status"][:1]:
                result.status_class_right += 1
            else:
                result.misses.append(
                    f"{label['file']}: status {finding.status} (label {expected['status']})"
                )
        reason = finding.classification.reason
        if reason == expected["reason"]:
            result.reason_right += 1
        else:
            result.misses.append(
                f"{label['file']}: reason {reason} [{finding.classification.rule}]"
                f" (label {expected['reason']}) {finding.reply[:160]!r}"
            )
        if finding.classification.hard == expected["hard"]:
            result.hard_right += 1
        if sender_side and finding.classification.hard:
            result.sender_side_hard += 1
