"""What the blank-field check costs the send pipeline (issue 12 item 5).

    .venv/bin/python bench/missing_fields.py
    .venv/bin/python bench/missing_fields.py --recipients 50000

Per campaign, ``fields.required_fields`` parses the template once; per recipient,
``fields.missing`` looks the required fields up in the context. The baseline measured
in the same run is rendering that recipient's message (``CompiledTemplate.render``),
which the pipeline does anyway; the ratio says how much the check adds. No database.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "luxmail.settings")
os.environ.setdefault("LUXMAIL_ENV", "dev")

import django

django.setup()

from campaigns import demo  # noqa: E402
from campaigns.content import fields, templating  # noqa: E402
from campaigns.content.context import SAMPLE_CONTEXT  # noqa: E402

HTML = demo.PHI_HTML + "<p>Your appointment is on {{ phi.next_appointment }}.</p>"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipients", type=int, default=20_000)
    n = parser.parse_args().recipients
    context = {**SAMPLE_CONTEXT, "org": {"name": "x", "postal_address": "y"}}
    contexts = [
        {**context, "phi": {**context["phi"], "next_appointment": "" if i % 3 else "2026-12-01"}}
        for i in range(n)
    ]
    started = time.perf_counter()
    for _ in range(100):
        required = fields.required_fields(subject="Check-up", html=HTML)
    analysis = (time.perf_counter() - started) / 100
    started = time.perf_counter()
    skipped = sum(1 for c in contexts if fields.missing(c, required))
    check = time.perf_counter() - started
    compiled = templating.CompiledTemplate(subject="Check-up", html=HTML, text="")
    started = time.perf_counter()
    for c in contexts:
        compiled.render(c)
    render = time.perf_counter() - started
    print(f"template analysis: {analysis * 1000:.2f} ms per campaign (required: {required})")
    print(f"missing-field check: {check / n * 1e6:.2f} µs per recipient ({skipped:,} of {n:,})")
    print(f"render (baseline):   {render / n * 1e6:.2f} µs per recipient")
    print(f"check / render ratio: {check / render:.4f}")
    print(f"load average: {os.getloadavg()}")


if __name__ == "__main__":
    main()
