"""Load proxy and security-gateway networks into ``ProxyRange`` (docs/tracking.md).

    manage.py load_proxy_ranges --seed
    manage.py load_proxy_ranges --apple https://mask-api.icloud.com/egress-ip-ranges.csv
    manage.py load_proxy_ranges --apple egress-ip-ranges.csv
    manage.py load_proxy_ranges --gateways our-gateways.csv --source hospital_gateways

Each list replaces the rows of its own source (``seed``, ``apple_egress`` or
``--source``) and leaves every other source, and every row's active flag, alone.
Running it twice with the same input changes nothing the second time.
"""

from __future__ import annotations

import sys
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.core.management.base import BaseCommand, CommandError, CommandParser

from reporting import proxy_ranges, services

MAX_DOWNLOAD_BYTES = 200 * 1024 * 1024
ACTOR = "command:load_proxy_ranges"


def _read(location: str) -> str:
    """A local file, ``-`` for stdin, or an http(s) URL."""
    if location == "-":
        return sys.stdin.read()
    scheme = urlsplit(location).scheme
    if scheme in {"http", "https"}:
        request = urllib.request.Request(location, headers={"User-Agent": "LuxMail/1"})  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310
                data = response.read(MAX_DOWNLOAD_BYTES + 1)
        except OSError as error:
            raise CommandError(f"Could not download {location}: {error}") from None
        if len(data) > MAX_DOWNLOAD_BYTES:
            raise CommandError(f"{location} is larger than {MAX_DOWNLOAD_BYTES} bytes.")
        return data.decode("utf-8-sig")
    path = Path(location)
    if not path.is_file():
        raise CommandError(f"No such file: {location}")
    return path.read_text(encoding="utf-8-sig")


class Command(BaseCommand):
    help = "Load proxy / security-gateway ranges (seed list, Apple egress CSV, gateway CSV)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--seed", action="store_true", help="The list shipped in reporting/data/."
        )
        parser.add_argument(
            "--apple",
            metavar="FILE_OR_URL",
            help=f"Apple's egress CSV (ip_prefix,country,region,city,), e.g. "
            f"{proxy_ranges.APPLE_EGRESS_URL}",
        )
        parser.add_argument(
            "--apple-source", default="apple_egress", help="Source name for --apple."
        )
        parser.add_argument(
            "--gateways", metavar="FILE_OR_URL", help="A cidr,scope,label CSV of gateway ranges."
        )
        parser.add_argument(
            "--source", default="gateways", help="Source name for --gateways (not 'admin')."
        )
        parser.add_argument(
            "--allow-empty",
            action="store_true",
            help="Accept an empty list (removes every range of that source).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        # (source, parsed list, where it came from, the date the list carries)
        jobs: list[tuple[str, proxy_ranges.ParseReport, str, str]] = []
        if options["seed"]:
            jobs.append(
                (
                    "seed",
                    proxy_ranges.read_seed(),
                    str(proxy_ranges.SEED_PATH.name),
                    proxy_ranges.seed_published(),
                )
            )
        if options["apple"]:
            report = proxy_ranges.parse_apple_egress(_read(options["apple"]))
            jobs.append((options["apple_source"], report, options["apple"], ""))
        if options["gateways"]:
            report = proxy_ranges.parse_gateway_csv(_read(options["gateways"]))
            jobs.append((options["source"], report, options["gateways"], ""))
        if not jobs:
            raise CommandError("Say what to load: --seed, --apple FILE_OR_URL or --gateways FILE.")
        for source, report, location, published in jobs:
            for problem in report.skipped:
                self.stderr.write(f"{source}: skipped {problem}")
            try:
                result = services.proxy_ranges_replace(
                    source=source,
                    specs=report.ranges,
                    actor=ACTOR,
                    allow_empty=options["allow_empty"],
                    location="-" if location == "-" else location,
                    published=published,
                )
            except services.ProxyRangeLoadError as error:
                raise CommandError(str(error)) from None
            self.stdout.write(
                f"{source}: {result.total} ranges (added {result.added}, updated "
                f"{result.updated}, removed {result.removed}, unchanged {result.unchanged}); "
                f"{report.skipped_count} lines skipped"
            )
