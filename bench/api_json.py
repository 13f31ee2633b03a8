"""How long the API's bounded JSON parser takes on hostile 1 MiB bodies.

    .venv/bin/python bench/api_json.py

Baseline, in the same run: plain ``json.loads`` of an ordinary 1 MiB body (a list of
contact-like objects). Prints seconds, the ratio to the baseline and the machine load.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("LUXMAIL_ENV", "test")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "luxmail.settings")

import django

django.setup()

from rest_framework.exceptions import ParseError  # noqa: E402

from luxmail.api.parsers import loads_bounded  # noqa: E402

MIB = 1024 * 1024


def best_of(runs: int, work: Any) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    row = {"email": "someone@example.org", "first_name": "Alex", "status": "active"}
    ordinary = json.dumps([row] * (MIB // len(json.dumps(row))))[:MIB]
    ordinary = ordinary[: ordinary.rindex("}") + 1] + "]"
    samples = {
        "1 MiB of '['": "[" * MIB,
        "64+ nested objects, padded": '{"a":' * 100 + "1" + "}" * 100 + " " * (MIB - 601),
        "1 MiB flat object (keys)": json.dumps({f"k{i}": 0 for i in range(MIB // 10)})[:MIB],
        "1 MiB list of small objects": json.dumps([{"k": 0}] * (MIB // 9))[:MIB],
        "1 MiB list of numbers": json.dumps([0] * (MIB // 3))[: MIB - 2] + "]",
    }
    baseline = best_of(5, lambda: json.loads(ordinary))
    print(f"load average {os.getloadavg()}")
    print(f"baseline json.loads, ordinary 1 MiB: {baseline * 1000:.1f} ms")
    for name, text in samples.items():

        def run(text: str = text) -> None:
            with contextlib.suppress(ParseError):
                loads_bounded(text, max_depth=64, max_keys=10_000)

        seconds = best_of(5, run)
        print(f"{name:32} {seconds * 1000:8.1f} ms  {seconds / baseline:5.2f}x baseline")
    print(f"load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
