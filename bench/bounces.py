"""Bounce and feedback parsing over the labelled corpus (tests/corpora/bounces).

    .venv/bin/python bench/bounces.py            # accuracy + speed, new parser and baseline
    .venv/bin/python bench/bounces.py --misses   # also list each disagreement with the labels

Prints, for LuxMail's parser (campaigns/sending/feedback) and for a naive baseline (the
parser LuxMail had before issue #14: RFC 3464/5965 parts only, first DSN group skipped,
every 5xx hard): parse rate (no well-formed mail refused), kind, recipient accuracy,
status-class agreement, reason accuracy, hard/soft agreement, sender-side refusals counted
hard (target 0), authentication-failure reports counted as complaints (target 0), and
mails per second of CPU time on one core (process time, so other load on the machine
inflates it less; the load is printed). No database.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import re
import sys
import time
from email.message import Message
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import system_load
from campaigns.sending.feedback import (
    Classification,
    Feedback,
    FeedbackKind,
    Finding,
    Reason,
    Scope,
    parse,
)
from campaigns.sending.feedback.evaluate import CORPUS, score

# --- the baseline: main's campaigns/sending/bounces.py parse() before issue #14 ----------

_ENHANCED = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")


def _old_text(value: object) -> str:
    return " ".join(str(value or "").split())


def baseline(raw: bytes) -> Feedback | None:
    """The old parser: DSN/ARF parts only (refuses everything else), skips the first DSN
    group, reads no recipient, calls every 5xx hard and only 5.1.x address-level."""
    if len(raw) > 2 * 1024 * 1024:
        return None
    document = email.message_from_bytes(raw, policy=email.policy.compat32)
    findings: list[Finding] = []
    kinds = set()
    for part in document.walk():
        ctype = part.get_content_type()
        if ctype == "message/delivery-status":
            kinds.add("dsn")
            groups = part.get_payload()
            if not isinstance(groups, list):
                continue
            for group in groups[1:] if len(groups) > 1 else groups:
                if not isinstance(group, Message):
                    continue
                action = _old_text(group.get("Action")).lower()
                status = _old_text(group.get("Status")).split(" ")[0]
                if action in ("delivered", "relayed", "expanded"):
                    continue
                if not (status.startswith(("4", "5")) or action in ("failed", "delayed")):
                    continue
                hard = status.startswith("5.1.")
                recipient = _old_text(group.get("Final-Recipient")).split(";")[-1].strip(" <>")
                reason = Reason.USER_UNKNOWN if hard else Reason.POLICY
                if status.startswith("4") or action == "delayed":
                    reason = Reason.UNDEFINED
                findings.append(
                    Finding(
                        recipient=recipient.lower(),
                        action=action or "failed",
                        status=status,
                        reply="",
                        classification=Classification(
                            reason=reason,
                            hard=hard or status.startswith("5"),
                            scope=Scope.RECIPIENT_PERMANENT,
                            rule="old",
                        ),
                    )
                )
        elif ctype == "message/feedback-report":
            kinds.add("arf")
    if not kinds:
        return None
    if "arf" in kinds:
        return Feedback(kind=FeedbackKind.COMPLAINT)
    return Feedback(
        kind=FeedbackKind.BOUNCE if findings else FeedbackKind.DELIVERED, findings=tuple(findings)
    )


def _rate(func, raws: list[bytes], runs: int) -> float:
    best = 0.0
    for _ in range(runs):
        start = time.process_time()
        for raw in raws:
            func(raw)  # the corpus is all mail: neither parser raises (refusals are None)
        elapsed = time.process_time() - start
        best = max(best, len(raws) / elapsed if elapsed else 0.0)
    return best


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    options.add_argument("--runs", type=int, default=7, help="speed runs (best is kept)")
    options.add_argument("--misses", action="store_true", help="list disagreements")
    args = options.parse_args()

    raws = [path.read_bytes() for path in sorted(CORPUS.glob("*/*.eml"))]
    print(
        f"corpus: {CORPUS.relative_to(Path.cwd()) if CORPUS.is_relative_to(Path.cwd()) else CORPUS}"
        f" ({len(raws)} mails, {sum(map(len, raws)) // 1024} KiB)"
    )
    print(f"load:   {system_load()}")
    for name, func in (("LuxMail feedback parser", parse), ("baseline (old parser)", baseline)):
        result = score(func)
        speed = _rate(func, raws, args.runs)
        print(f"\n== {name}")
        for line in result.lines():
            print(f"  {line}")
        print(f"  mails/s (one core, CPU)  {speed:8.0f}")
        if args.misses and func is parse:
            for miss in result.misses:
                print(f"    - {miss}")
    print(f"\nload:   {system_load()}")


if __name__ == "__main__":
    main()
