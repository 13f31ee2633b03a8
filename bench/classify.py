"""Classifier and proxy-range lookup cost, as the tracking endpoint will pay it.

    .venv/bin/python bench/classify.py                 # 300,000 ranges
    .venv/bin/python bench/classify.py --ranges 50000

Builds a ``RangeIndex`` shaped like Apple's egress list (mostly IPv6 /64 and /45,
some IPv4 /27) plus the seed list, then prints: build time, the index's memory,
lookups per second (hits and misses) and ``classify()`` calls per second for a mix of
opens and clicks with recent-event history. No database: both are pure in-process
work that runs on every open and click.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reporting import proxy_ranges
from reporting.classification import (
    EventFacts,
    Kind,
    Label,
    PriorEvent,
    classify,
)

AGENTS = [
    "Mozilla/5.0",
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17928; Pro)",
    "Mimecast URL Protect",
]


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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--ranges", type=int, default=300_000)
    parser.add_argument("--lookups", type=int, default=200_000)
    args = parser.parse_args()
    rng = random.Random(7)
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

    now = datetime(2026, 11, 2, 12, tzinfo=UTC)
    events = []
    for i in range(args.lookups):
        ip = addresses[i]
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
                user_agent=AGENTS[i % len(AGENTS)],
                ip=ip,
                seconds_since_delivery=float(i % 7200),
                link_index=i % 4 if kind is Kind.CLICK else None,
                link_count=4,
                earlier=earlier,
                network=index.lookup(ip),
            )
        )
    started = time.perf_counter()
    for facts in events:
        classify(facts)
    classified = time.perf_counter() - started

    print(f"ranges indexed            {index.size:>12,}")
    print(f"index build               {build:>12.2f} s")
    print(f"index memory              {current / 1e6:>12.1f} MB")
    print(f"lookups                   {args.lookups / lookup:>12,.0f} /s  ({found:,} hits)")
    print(f"lookup cost               {lookup / args.lookups * 1e6:>12.1f} µs")
    print(f"classify()                {args.lookups / classified:>12,.0f} /s")
    print(f"classify cost             {classified / args.lookups * 1e6:>12.1f} µs")


if __name__ == "__main__":
    main()
