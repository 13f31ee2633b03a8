"""What the ICD-10-CM picker costs (issue 20 item 2): loading the code list once per
process, and one search per keystroke (debounced by the browser).

    .venv/bin/python bench/icd10.py

No database. Prints the time to parse the package's XML (once per install), to read the
compact index under ``var/icd10/`` (once per process), the first search of a process,
the peak memory, and the median time of ``icd10.search`` for typical and worst-case
queries, with the load.
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
    source = icd10._data_file()
    started = time.perf_counter()
    parsed = icd10._parse(source)
    print(f"parse the package's XML (no index): {time.perf_counter() - started:.2f} s")
    icd10._write_index(icd10.index_path(source), parsed)
    read = median_seconds(lambda: icd10._read_index(icd10.index_path(source)), runs=5)
    print(f"read the compact index: {read * 1000:.0f} ms (median of 5)")
    icd10._codes = None  # a fresh process: the first request loads the index, then searches
    started = time.perf_counter()
    icd10.search("diab")
    first = time.perf_counter() - started
    print(f"first search of a process (index present): {first * 1000:.0f} ms")
    tracemalloc.start()
    icd10._codes = None
    count = len(icd10.codes())
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"{count} codes, peak {peak / 2**20:.1f} MiB (traced)")
    for query in [*QUERIES, "a " * 30]:
        seconds = median_seconds(lambda q=query: icd10.search(q), runs=15)
        print(f"search {query[:20]!r:24} {seconds * 1000:7.1f} ms")
    print(system_load())


if __name__ == "__main__":
    main()
