"""The labelled corpus of real bounce and feedback mails (tests/corpora/bounces): the
parser must keep meeting issue #14's targets on it. Accuracy only; speed is measured by
``bench/bounces.py``."""

from __future__ import annotations

from campaigns.sending.feedback import parse
from campaigns.sending.feedback.evaluate import labels, score


def test_the_corpus_is_large_and_labelled() -> None:
    found = labels()
    assert len(found) >= 300
    assert {label["kind"] for label in found} >= {"bounce", "auto_reply", "unrecognized"}


def test_the_parser_meets_the_targets_on_the_corpus() -> None:
    result = score(parse)
    report = "\n".join(result.lines() + result.misses)
    assert result.refused == 0, report
    assert result.pct(result.recipient_right, result.bounces) >= 98.0, report
    assert result.pct(result.status_class_right, result.status_labelled) >= 98.0, report
    assert result.pct(result.hard_right, result.reasons_labelled) >= 95.0, report
    assert result.pct(result.kind_right, result.mails) >= 98.0, report
    assert result.sender_side_hard == 0, report
    assert result.auth_reports_as_complaints == 0, report
