"""The accounting of bench/faults.py on synthetic inputs (not its timing or processes).

The harness is only as good as its bookkeeping: a duplicate, a loss or an honest
"unknown" must each be counted exactly where it belongs.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parent.parent / "bench" / "faults.py"


@pytest.fixture(scope="module")
def faults():
    spec = importlib.util.spec_from_file_location("bench_faults_under_test", _PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def receipt(faults, message_id, outcome="accepted", at=0.0):
    return faults.Receipt(message_id, f"r{message_id}@faults.test", at, outcome)


def test_clean_run_counts_only_sent(faults):
    states = {1: "sent", 2: "sent", 3: "skipped"}
    tally = faults.compare_delivery(states, [receipt(faults, 1), receipt(faults, 2)])
    assert (tally.sent, tally.duplicates, tally.lost, tally.unknown) == (2, 0, 0, 0)
    assert (tally.stuck, tally.untracked, tally.stray) == (0, 0, 0)


def test_second_delivery_is_a_duplicate_whatever_the_database_says(faults):
    states = {1: "sent", 2: "sent"}
    receipts = [receipt(faults, 1), receipt(faults, 1), receipt(faults, 1), receipt(faults, 2)]
    tally = faults.compare_delivery(states, receipts)
    assert tally.duplicates == 2
    assert tally.sent == 2
    assert tally.lost == 0


def test_sent_without_acceptance_is_lost(faults):
    # Never received, or only dropped after DATA (no 250): "sent" is then a lie.
    states = {1: "sent", 2: "sent", 3: "sent"}
    tally = faults.compare_delivery(states, [receipt(faults, 2, "dropped"), receipt(faults, 3)])
    assert tally.lost == 2
    assert tally.duplicates == 0


def test_dropped_after_data_and_unknown_is_honest(faults):
    states = {1: "unknown", 2: "sent"}
    tally = faults.compare_delivery(states, [receipt(faults, 1, "dropped"), receipt(faults, 2)])
    assert (tally.unknown, tally.lost, tally.duplicates, tally.untracked) == (1, 0, 0, 0)


def test_resending_an_unknown_message_is_a_duplicate(faults):
    states = {1: "sent"}
    tally = faults.compare_delivery(states, [receipt(faults, 1, "dropped"), receipt(faults, 1)])
    assert tally.duplicates == 1
    assert tally.lost == 0


def test_open_at_the_deadline_is_stuck_and_lost_only_when_never_delivered(faults):
    states = {1: "queued", 2: "deferred", 3: "sending", 4: "sending"}
    tally = faults.compare_delivery(states, [receipt(faults, 3)])
    assert tally.stuck == 4
    assert tally.lost == 3  # 3 reached the sink: the worker died before writing "sent"
    assert tally.sent == 0


def test_delivered_but_recorded_as_not_sent_is_untracked(faults):
    states = {1: "failed", 2: "cancelled", 3: "sent"}
    receipts = [receipt(faults, 1), receipt(faults, 2), receipt(faults, 3)]
    tally = faults.compare_delivery(states, receipts)
    assert tally.untracked == 2
    assert tally.lost == 0


def test_receipts_of_other_campaigns_are_stray(faults):
    tally = faults.compare_delivery({1: "sent"}, [receipt(faults, 1), receipt(faults, 99)])
    tally_none = faults.compare_delivery({1: "sent"}, [receipt(faults, None)])
    assert tally.stray == 1
    assert tally.duplicates == 0
    assert tally_none.stray == 1
    assert tally_none.lost == 1


def test_tracking_accounting(faults):
    # Hits 0-4 answered 200/302, 2 failed; hit 3 stored twice, hit 4 never stored, an
    # unanswered hit (7) stored anyway (the client cannot know; not a loss).
    tally = faults.compare_tracking([0, 1, 2, 3, 4], 2, [0, 1, 2, 3, 3, 7])
    assert (tally.sent, tally.duplicates, tally.lost, tally.unknown) == (5, 1, 1, 2)


def test_max_rate_ratio_against_the_throttle(faults):
    # 60 messages/min throttle = 1/s; 20 messages within 10 s is exactly 2x.
    burst = [100.0 + i * 0.5 for i in range(20)]
    assert faults.max_rate_ratio(burst, per_minute=60, window=10) == pytest.approx(2.0)
    steady = [float(i) for i in range(100)]  # one per second
    assert faults.max_rate_ratio(steady, per_minute=60, window=10) == pytest.approx(1.1)
    assert faults.max_rate_ratio([], per_minute=60, window=10) == 0.0


def test_line_format(faults):
    tally = faults.Tally(sent=3, duplicates=1, lost=2, unknown=4)
    tally.extra["recovery_s"] = "12.5"
    line = tally.line("worker_sigkill", None)
    assert line.startswith(
        "scenario=worker_sigkill sent=3 duplicates=1 lost=2 unknown=4 max_rate_vs_throttle=n/a "
    )
    assert line.endswith("recovery_s=12.5")
    assert "max_rate_vs_throttle=1.05" in tally.line("x", 1.049)
