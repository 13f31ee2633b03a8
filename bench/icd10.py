"""What the ICD-10-CM picker costs (issue 20 item 2): loading the code list once per
process, and one search per keystroke (debounced by the browser).

    .venv/bin/python bench/icd10.py

No database. Prints the load time and peak memory of ``contacts.icd10.codes()`` and the
median time of ``icd10.search`` for typical and worst-case queries, with the load.
"""

from __future__ import annotations

import os
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "luxmail.settings")
os.environ.setdefault("LUXMAIL_ENV", "dev")

import django

django.setup()

from bench.common import median_seconds, system_load  # noqa: E402
from contacts import icd10  # noqa: E402

QUERIES = ["diab", "type 2 diabetes", "E11", "e119", "hypertension", "asthma unc", "zzzz"]


def main() -> None:
    print(system_load())
    tracemalloc.start()
    started = time.perf_counter()
    count = len(icd10.codes())
    loaded = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"load: {count} codes in {loaded:.2f} s, peak {peak / 2**20:.1f} MiB (traced)")
    for query in [*QUERIES, "a " * 30]:
        seconds = median_seconds(lambda q=query: icd10.search(q), runs=15)
        print(f"search {query[:20]!r:24} {seconds * 1000:7.1f} ms")
    print(system_load())


if __name__ == "__main__":
    main()
