"""Cost of the audit checkpoint file as it grows (luxmail/audit_checkpoints.py).

    .venv/bin/python bench/audit_checkpoints.py               # 35,040 lines: a year at 15 min
    .venv/bin/python bench/audit_checkpoints.py --lines 105120

Writes ``--lines`` signed, chained checkpoint lines into a temporary directory, then
prints the time to check the whole file (``latest()``, what every verification and
every periodic checkpoint pay), to append one line (last line checked, fsync) and to
read only the last line (``latest_quick()``, the compliance page: the baseline of the
ratios), with the machine's load. No database.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import median_seconds, system_load


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=35_040)
    args = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="luxmail-bench-checkpoints-")
    os.environ["LUXMAIL_ENV"] = "test"
    os.environ["DJANGO_SETTINGS_MODULE"] = "luxmail.settings"
    os.environ["LUXMAIL_AUDIT_CHECKPOINT_DIR"] = directory
    import django

    django.setup()
    from django.conf import settings

    from luxmail import audit_checkpoints as checkpoints

    def _checkpoint(number: int) -> checkpoints.Checkpoint:
        return checkpoints.Checkpoint(
            count=number * 10,
            first_id=1,
            first_hash="a" * 64,
            last_id=number * 10,
            last_hash=f"{number:064x}",
            at=checkpoints.now_iso(),
            reason="periodic",
        )

    # Filled in one go (signed and chained as append() does); appending one by one
    # would fsync every line.
    key_id, secret = checkpoints.parse_keys(settings.LUXMAIL_AUDIT_CHECKPOINT_KEYS)[0]
    start = time.perf_counter()
    prev = checkpoints.GENESIS_SIGNATURE
    lines = []
    for number in range(1, args.lines + 1):
        body = checkpoints._signed_body(_checkpoint(number), prev=prev, key_id=key_id)
        body["sig"] = prev = checkpoints._signature(body, secret)
        lines.append(json.dumps(body, sort_keys=True, separators=(",", ":")))
    checkpoints.path().parent.mkdir(parents=True, exist_ok=True)
    checkpoints.path().write_text("\n".join(lines) + "\n")
    fill = time.perf_counter() - start
    size = checkpoints.path().stat().st_size
    quick = median_seconds(checkpoints.latest_quick, runs=20)
    full = median_seconds(checkpoints.latest, runs=5)
    extra = [args.lines]

    def append_one() -> None:
        extra[0] += 1
        checkpoints.append(_checkpoint(extra[0]))

    append = median_seconds(append_one, runs=5)
    print(f"lines: {args.lines:,}  file: {size / 1e6:.1f} MB  (written in {fill:.1f} s)")
    print(f"latest_quick (last line, page): {quick * 1000:.3f} ms  [baseline]")
    print(f"latest (whole file checked):    {full * 1000:.1f} ms  ratio {full / quick:,.0f}x")
    print(f"append one line (fsync):        {append * 1000:.1f} ms  ratio {append / quick:,.0f}x")
    print(f"load: {system_load()}")


if __name__ == "__main__":
    main()
