"""Classifier accuracy on the labelled user-agent corpus, its speed, and the range lookup.

    .venv/bin/python bench/classify.py                  # everything
    .venv/bin/python bench/classify.py --ranges 50000   # smaller Apple-shaped range list
    .venv/bin/python bench/classify.py --skip-ranges    # accuracy and classify() speed only

1. Accuracy (issue #15): every agent of ``reporting/tests/corpora/ua/corpus.tsv``
   classified as an open an hour after delivery, so only the user agent speaks. Prints
   precision and recall per label, the confusion matrix, the rates per category and
   source against the targets — for the current classifier and for main's (the frozen
   copy in ``bench/classify_baseline.py``).
2. Speed: ``classify()`` calls per second on one core for typical facts (agents drawn
   from the corpus with a skewed, real-traffic-like repetition; opens and clicks with
   recent-event history), warm (parsed agents cached) and cold (every agent new), with
   the baseline's rate in the same run.
3. The proxy-range index: build time, memory, lookups per second.

No database: all of it is pure in-process work. The machine load is printed first.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import classify_baseline as baseline  # bench/classify_baseline.py (main's classifier)
from common import system_load

from reporting import proxy_ranges
from reporting.classification import (
    EventFacts,
    Kind,
    Label,
    PriorEvent,
    agent_verdict,
    classify,
)
from reporting.tests import ua_corpus


def synthetic_rows(count: int, rng: random.Random) -> list[tuple[str, str, str, str, str]]:
    rows = []
    for n in range(count):
        if n % 5 == 0:
            rows.append(
                (
                    f"172.{224 + n % 8}.{n // 256 % 256}.{n % 8 * 32}/27",
                    "opens",
                    "privacy_proxy",
                    "apple_mpp",
                    "Apple egress",
                )
            )
        elif n % 5 == 4:
            rows.append(
                (
                    f"2606:54c0:{n % 65536:x}::/45",
                    "opens",
                    "privacy_proxy",
                    "apple_mpp",
                    "Apple egress",
                )
            )
        else:
            rows.append(
                (
                    f"2a02:26f7:{rng.randrange(65536):x}:{n % 65536:x}::/64",
                    "opens",
                    "privacy_proxy",
                    "apple_mpp",
                    "Apple egress",
                )
            )
    rows.extend(proxy_ranges.iter_rows(proxy_ranges.read_seed().ranges))
    return rows


def _baseline_label(sample: ua_corpus.Sample) -> str:
    facts = ua_corpus.facts_for(sample)
    old = baseline.EventFacts(
        kind=baseline.Kind.OPEN,
        occurred_at=facts.occurred_at,
        user_agent=facts.user_agent,
        ip=facts.ip,
        seconds_since_delivery=facts.seconds_since_delivery,
    )
    return baseline.classify(old).label.value


def print_accuracy(title: str, evaluation: ua_corpus.Evaluation) -> bool:
    print(f"\n== {title} ==")
    print(f"{'label':<15}{'precision':>10}{'recall':>9}{'support':>9}")
    for label in ua_corpus.LABELS:
        support = sum(n for (want, _), n in evaluation.confusion.items() if want == label)
        if support or any(got == label for (_, got) in evaluation.confusion):
            print(
                f"{label:<15}{evaluation.precision(label):>10.3f}"
                f"{evaluation.recall(label):>9.3f}{support:>9,}"
            )
    print("\nconfusion (rows expected, columns got)")
    print(f"{'':<15}" + "".join(f"{label:>15}" for label in ua_corpus.LABELS))
    for want in ua_corpus.LABELS:
        row = [evaluation.confusion[(want, got)] for got in ua_corpus.LABELS]
        if any(row):
            print(f"{want:<15}" + "".join(f"{n:>15,}" for n in row))
    print("\nper category: share labelled human / privacy_proxy / automated / unknown")
    for category in sorted(evaluation.by_category):
        counts = evaluation.by_category[category]
        total = sum(counts.values())
        shares = " ".join(f"{counts[label] / total:>8.2%}" for label in ua_corpus.LABELS)
        print(f"  {category:<17}{total:>6,}  {shares}")
    print("per source and category (same columns)")
    for (source, category), counts in sorted(evaluation.by_source.items()):
        total = sum(counts.values())
        shares = " ".join(f"{counts[label] / total:>8.2%}" for label in ua_corpus.LABELS)
        print(f"  {source:<27}{category:<17}{total:>6,}  {shares}")
    print("targets")
    all_met = True
    for target in ua_corpus.TARGETS:
        met = target.met(evaluation)
        all_met &= met
        print(f"  {'ok  ' if met else 'MISS'} {target.name:<48} {target.value(evaluation):>8.2%}")
    return all_met


def typical_events(
    samples: list[ua_corpus.Sample], count: int, rng: random.Random, index: proxy_ranges.RangeIndex
) -> list[EventFacts]:
    """Opens and clicks with history; agents repeat like real traffic (a few dominate)."""
    agents = [s.user_agent for s in rng.sample(samples, min(2000, len(samples)))]
    weights = [1 / (rank + 1) for rank in range(len(agents))]  # Zipf-like
    chosen = rng.choices(agents, weights=weights, k=count)
    now = datetime(2026, 11, 2, 12, tzinfo=UTC)
    events = []
    for i in range(count):
        ip = f"203.0.{i % 200}.{i % 250}"
        kind = Kind.CLICK if i % 3 == 0 else Kind.OPEN
        earlier = tuple(
            PriorEvent(
                Kind.CLICK,
                now - timedelta(seconds=s),
                ip,
                Label.HUMAN,
                link_index=s % 4,
                event_id=s,
            )
            for s in range(i % 4)
        )
        events.append(
            EventFacts(
                kind=kind,
                occurred_at=now,
                user_agent=chosen[i],
                ip=ip,
                seconds_since_delivery=float(i % 7200),
                link_index=i % 4 if kind is Kind.CLICK else None,
                link_count=4,
                earlier=earlier,
                network=index.lookup(ip),
            )
        )
    return events


def _as_baseline(facts: EventFacts) -> object:
    return baseline.EventFacts(
        kind=baseline.Kind(facts.kind.value),
        occurred_at=facts.occurred_at,
        user_agent=facts.user_agent,
        ip=facts.ip,
        seconds_since_delivery=facts.seconds_since_delivery,
        link_index=facts.link_index,
        link_count=facts.link_count,
        earlier=tuple(
            baseline.PriorEvent(
                baseline.Kind(p.kind.value),
                p.at,
                p.ip,
                baseline.Label.HUMAN,
                link_index=p.link_index,
                event_id=p.event_id,
            )
            for p in facts.earlier
        ),
    )


def _rate(func: Callable[[object], object], events: list) -> float:
    started = time.perf_counter()
    for facts in events:
        func(facts)
    return len(events) / (time.perf_counter() - started)


def print_speed(samples: list[ua_corpus.Sample], count: int, rng: random.Random) -> None:
    index = proxy_ranges.RangeIndex(proxy_ranges.iter_rows(proxy_ranges.read_seed().ranges))
    events = typical_events(samples, count, rng, index)
    old_events = [_as_baseline(facts) for facts in events]
    distinct = len({facts.user_agent for facts in events})
    agent_verdict.cache_clear()
    first = _rate(classify, events)  # fills the cache: each distinct agent parsed once
    warm = _rate(classify, events)
    old = _rate(baseline.classify, old_events)
    cold_events = [
        EventFacts(kind=Kind.OPEN, occurred_at=events[0].occurred_at, user_agent=s.user_agent)
        for s in samples[: min(2000, len(samples))]
    ]
    agent_verdict.cache_clear()
    cold = _rate(classify, cold_events)
    print("\n== speed: classify() on one core ==")
    print(f"typical events            {count:>12,}  ({distinct:,} distinct agents)")
    print(f"current, cache warm       {warm:>12,.0f} /s   (target ≥ 50,000)")
    print(f"current, first pass       {first:>12,.0f} /s   (cache filling)")
    print(f"current, agent cache empty{cold:>12,.0f} /s   (each agent parsed again)")
    print(f"baseline (main)           {old:>12,.0f} /s")
    info = agent_verdict.cache_info()
    print(f"agent cache               {info.currsize:>12,} entries (max {info.maxsize:,})")


def print_ranges(args: argparse.Namespace, rng: random.Random) -> None:
    rows = synthetic_rows(args.ranges, rng)

    started = time.perf_counter()
    index = proxy_ranges.RangeIndex(rows)
    build = time.perf_counter() - started
    tracemalloc.start()  # a second build, traced, for the memory the index keeps
    kept = proxy_ranges.RangeIndex(rows)
    current, _peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del kept

    hits = [row[0].split("/")[0] for row in rng.sample(rows, min(len(rows), 1000))]
    misses = [f"203.0.{rng.randrange(256)}.{rng.randrange(256)}" for _ in range(1000)]
    addresses = [rng.choice(hits) if i % 2 else rng.choice(misses) for i in range(args.lookups)]
    started = time.perf_counter()
    found = sum(index.lookup(address) is not None for address in addresses)
    lookup = time.perf_counter() - started

    print("\n== proxy-range index ==")
    print(f"ranges indexed            {index.size:>12,}")
    print(f"index build               {build:>12.2f} s")
    print(f"index memory              {current / 1e6:>12.1f} MB")
    print(f"lookups                   {args.lookups / lookup:>12,.0f} /s  ({found:,} hits)")
    print(f"lookup cost               {lookup / args.lookups * 1e6:>12.1f} µs")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--ranges", type=int, default=300_000)
    parser.add_argument("--lookups", type=int, default=200_000)
    parser.add_argument("--events", type=int, default=200_000, help="typical events timed")
    parser.add_argument("--skip-ranges", action="store_true")
    parser.add_argument("--misses", type=int, default=0, help="print this many misses")
    args = parser.parse_args()
    rng = random.Random(7)
    print(f"machine load              {system_load()}")
    samples = ua_corpus.load()
    print(f"corpus                    {len(samples):>12,} agents ({ua_corpus.CORPUS.name})")
    current = ua_corpus.evaluate(samples, ua_corpus.label_with_current)
    met = print_accuracy("current classifier", current)
    print_accuracy("baseline: main's classifier", ua_corpus.evaluate(samples, _baseline_label))
    for sample, got in current.misses[: args.misses]:
        print(f"  miss {sample.category:<16}{got:<14}{sample.source:<28}{sample.user_agent[:90]}")
    print_speed(samples, args.events, rng)
    if not args.skip_ranges:
        print_ranges(args, rng)
    print(f"\nall accuracy targets met: {'yes' if met else 'NO'}")


if __name__ == "__main__":
    main()
