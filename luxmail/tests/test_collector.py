"""``collector.heap_frozen``: the collector settings of long batch jobs."""

from __future__ import annotations

import gc
import weakref

import pytest

from luxmail import collector


class _Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector frees it


def test_the_block_runs_frozen_with_a_larger_young_generation_and_is_restored():
    before = gc.get_threshold()
    assert gc.get_freeze_count() == 0
    with collector.heap_frozen():
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold()[0] == max(before[0], collector.YOUNG_THRESHOLD)
        with collector.heap_frozen():  # re-entrant: the inner block changes nothing
            assert gc.get_freeze_count() > 0
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == before


def test_settings_are_restored_when_the_block_raises():
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), collector.heap_frozen():
        raise RuntimeError("boom")
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == before


def test_cycles_made_inside_the_block_are_still_collected():
    with collector.heap_frozen():
        node = _Node()
        gone = weakref.ref(node)
        del node
        gc.collect()
        assert gone() is None
