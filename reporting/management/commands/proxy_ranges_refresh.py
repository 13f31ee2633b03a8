"""Refresh the vendors' published proxy/gateway range lists (docs/tracking.md).

    manage.py proxy_ranges_refresh                          # every vendor list, from its URL
    manage.py proxy_ranges_refresh --only apple_egress
    manage.py proxy_ranges_refresh --from apple_egress=egress-ip-ranges.csv
    manage.py proxy_ranges_refresh --from microsoft_exchange=http://mirror.local/ms.json

Vendor lists (``reporting.proxy_ranges.VENDOR_LISTS``): ``apple_egress`` (Apple's iCloud
Private Relay / Mail Privacy Protection egress CSV) and ``microsoft_exchange`` (Exchange
Online ranges from the Microsoft 365 endpoints web service, scope clicks). ``--from``
takes a local file or another URL (a mirror, or a copy fetched elsewhere when this host
has no Internet access). Each list replaces its own source's rows and records the date
it was loaded (``ProxyRangeList``, shown in the admin). Run it weekly (cron, scheduler).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from reporting import proxy_ranges, services
from reporting.management.commands.load_proxy_ranges import _read

ACTOR = "command:proxy_ranges_refresh"


class Command(BaseCommand):
    help = "Refresh the vendors' published range lists (Apple egress, Microsoft Exchange)."

    def add_arguments(self, parser: CommandParser) -> None:
        names = ", ".join(proxy_ranges.VENDOR_LISTS)
        parser.add_argument(
            "--only", action="append", default=[], metavar="LIST", help=f"One of: {names}."
        )
        parser.add_argument(
            "--from",
            dest="locations",
            action="append",
            default=[],
            metavar="LIST=FILE_OR_URL",
            help="Load LIST from this file or URL instead of the vendor's URL.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        lists = proxy_ranges.VENDOR_LISTS
        overrides: dict[str, str] = {}
        for item in options["locations"]:
            name, sep, location = item.partition("=")
            if not sep or not location:
                raise CommandError(f"--from wants LIST=FILE_OR_URL, not {item!r}.")
            overrides[name.strip()] = location.strip()
        chosen = options["only"] or list(lists)
        unknown = sorted(set(chosen) - set(lists)) + sorted(set(overrides) - set(lists))
        if unknown:
            raise CommandError(f"Unknown list(s): {', '.join(unknown)}. Known: {', '.join(lists)}.")
        failed = []
        for name in chosen:
            vendor = lists[name]
            location = overrides.get(name) or vendor.default_location()
            try:
                report = vendor.parse(_read(location))
                for problem in report.skipped:
                    self.stderr.write(f"{name}: skipped {problem}")
                result = services.proxy_ranges_replace(
                    source=vendor.source, specs=report.ranges, actor=ACTOR, location=location
                )
            except (CommandError, services.ProxyRangeLoadError) as error:
                # One vendor's outage must not stop the others' refresh.
                self.stderr.write(f"{name}: not refreshed: {error}")
                failed.append(name)
                continue
            self.stdout.write(
                f"{name}: {result.total} ranges (added {result.added}, updated "
                f"{result.updated}, removed {result.removed}, unchanged {result.unchanged}); "
                f"{report.skipped_count} lines skipped"
            )
        if failed:
            raise CommandError(f"Not refreshed: {', '.join(failed)} (other lists were).")
