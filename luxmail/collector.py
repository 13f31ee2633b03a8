"""Garbage-collector settings for long batch jobs (the contact import and its check).

CPython's full collection walks every tracked object of the process. A batch job that
keeps a few thousand model instances and dicts alive per batch promotes them to the oldest
generation, which then fills up and is collected every few batches: on the import that was
~13 % of the job's CPU (``bench/import.py --job``), spent walking Django's own module
objects, which never die. :func:`heap_frozen` moves the objects that exist when the job
starts to the permanent generation (``gc.freeze``), so collections walk only what the job
created, and lets the youngest generation fill a little more between collections. Cyclic
garbage the job creates is still collected; everything is restored on exit, errors
included.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

# Objects allocated (net) before a young collection: 10x CPython's default, so the rows
# of a batch mostly die before a collection has to look at them.
YOUNG_THRESHOLD = 7000


@contextmanager
def heap_frozen() -> Iterator[None]:
    """Run the block with the current objects frozen and a larger young generation.

    Re-entrant (an inner use leaves the outer one's state alone) and process-wide, like
    the collector itself: the settings are put back when the outermost block exits.
    """
    if gc.get_freeze_count():
        yield
        return
    threshold = gc.get_threshold()
    gc.collect()  # what is garbage now is not frozen with the rest
    gc.freeze()
    gc.set_threshold(max(threshold[0], YOUNG_THRESHOLD), *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()
