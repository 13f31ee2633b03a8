"""What the bounded template sandbox costs, and what a hostile template can still take.

    .venv/bin/python bench/templates.py                  # every hostile payload
    .venv/bin/python bench/templates.py --rounds 9       # more rounds for the ratio

1. Every payload of ``campaigns/tests/hostile_templates.py`` is rendered in its own
   child process (1 GiB address-space limit, as in the DoS test), twice: once for the
   wall time and the peak RSS it added (``ru_maxrss``), once under ``tracemalloc`` for
   the peak of Python allocations. Prints each, and the worst of each.
2. A realistic campaign template is rendered by the LuxMail sandbox and by a plain
   ``jinja2.sandbox.ImmutableSandboxedEnvironment`` (same options, no bounds) in the
   same run, interleaved: renders per second and the ratio.
3. The largest source the token limit accepts: compile time and memory.

No database. Prints the machine load: the machine is shared, so say what was running.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from bench.common import system_load
from campaigns.content import sandbox, templating
from campaigns.tests.hostile_templates import PAYLOADS, REALISTIC, REALISTIC_CONTEXT
from campaigns.tests.test_template_dos import run_in_child


def hostile(names: list[str]) -> None:
    print(f"{'payload':38} {'outcome':24} {'seconds':>8} {'+RSS MB':>8} {'py peak MB':>10}")
    worst_time = worst_rss = worst_peak = (0.0, "")
    bad = []
    for name in names:
        timed = run_in_child(name)
        traced = run_in_child(name, trace=True)
        seconds = float(timed.get("seconds", 0.0))
        rss = float(timed.get("maxrss_delta_kb", 0)) / 1024
        peak = float(traced.get("tracemalloc_peak", 0)) / 2**20
        outcome = str(timed["outcome"])
        if outcome not in ("RenderError", "TemplateValidationError"):
            bad.append(name)
        print(f"{name:38} {outcome:24} {seconds:8.3f} {rss:8.1f} {peak:10.1f}")
        worst_time = max(worst_time, (seconds, name))
        worst_rss = max(worst_rss, (rss, name))
        worst_peak = max(worst_peak, (peak, name))
    print(f"worst time:          {worst_time[0]:.3f} s  ({worst_time[1]})")
    print(f"worst added RSS:     {worst_rss[0]:.1f} MB ({worst_rss[1]})")
    print(f"worst Python peak:   {worst_peak[0]:.1f} MB ({worst_peak[1]})")
    print(f"not ended by a clear error: {bad or 'none'}")


def realistic(rounds: int, per_round: int) -> None:
    bounded = templating.HTML_ENV.from_string(REALISTIC)
    plain_env = ImmutableSandboxedEnvironment(
        autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True
    )
    plain = plain_env.from_string(REALISTIC)
    assert "".join(plain.generate(REALISTIC_CONTEXT)) == templating.render_string(
        REALISTIC, REALISTIC_CONTEXT, html=True
    )

    def luxmail_once() -> None:
        with sandbox.limits():
            templating._stream(bounded, REALISTIC_CONTEXT, templating.MAX_OUTPUT_CHARS)

    def plain_once() -> None:
        "".join(plain.generate(REALISTIC_CONTEXT))

    rates: dict[str, list[float]] = {"luxmail": [], "plain": []}
    for _ in range(rounds):
        for label, once in (("plain", plain_once), ("luxmail", luxmail_once)):
            started = time.perf_counter()
            for _ in range(per_round):
                once()
            rates[label].append(per_round / (time.perf_counter() - started))
    lux, base = statistics.median(rates["luxmail"]), statistics.median(rates["plain"])
    print(f"realistic template ({len(REALISTIC):,} chars), median of {rounds} x {per_round}:")
    print(f"  plain jinja2 ImmutableSandboxedEnvironment: {base:9,.0f} renders/s")
    print(f"  LuxMail bounded sandbox:                    {lux:9,.0f} renders/s")
    print(f"  ratio (LuxMail / plain):                    {lux / base:9.2f}")


def largest_source() -> None:
    tag = "<td>{{ contact.first_name }}</td>"  # 6 tokens with the text
    source = tag * (sandbox.MAX_TOKENS // 6 - 1)
    tracemalloc.start()
    started = time.perf_counter()
    templating.CompiledTemplate(subject="s", html=source, text="")
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    print(
        f"largest accepted source ({len(source):,} chars, {sandbox.MAX_TOKENS:,} tokens): "
        f"compile {seconds:.2f} s (under tracemalloc), Python peak {peak:.1f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--per-round", type=int, default=300)
    parser.add_argument("--only", nargs="*", help="payload names (default: all)")
    args = parser.parse_args()
    print(f"load before: {system_load()}")
    hostile(args.only or list(PAYLOADS))
    realistic(args.rounds, args.per_round)
    largest_source()
    print(f"load after:  {system_load()}")


if __name__ == "__main__":
    main()
