"""First paint of the report page in headless Chromium, against a running LuxMail.

Start LuxMail with the demo data (``make run``, or ``manage.py runserver`` after
``demo_setup``), then::

    .venv/bin/python bench/report_page.py --base-url http://127.0.0.1:8000 \
        --credentials var/demo-admin.json --runs 5

Signs in as the demo Admin (password + TOTP from ``demo-admin.json``), loads
``/reports/`` ``runs`` times with an empty cache and ``runs`` times with a warm one,
and prints Playwright's performance timing: first paint, first contentful paint,
DOMContentLoaded, load, the moment every chart was drawn, and what plotly.js cost on
the wire. Target (issue #20): first paint < 1 s on the demo data. Figures:
docs/performance.md, "Report page".
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

import pyotp

TIMING = """() => {
  const paint = Object.fromEntries(
    performance.getEntriesByType('paint').map(e => [e.name, e.startTime]));
  const nav = performance.getEntriesByType('navigation')[0];
  const plotly = performance.getEntriesByType('resource')
    .find(e => e.name.includes('plotly-basic'));
  return {
    first_paint: paint['first-paint'], first_contentful_paint: paint['first-contentful-paint'],
    server_response: nav.responseStart, html_received: nav.responseEnd,
    dom_content_loaded: nav.domContentLoadedEventEnd, load: nav.loadEventEnd,
    plotly_transfer: plotly ? plotly.transferSize : null,
    plotly_body: plotly ? plotly.decodedBodySize : null,
  };
}"""


def _sign_in(page: Any, base: str, creds: dict[str, str]) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", creds["username"])
    page.fill("#id_password", creds["password"])
    page.click("form:has(#id_password) button[type=submit]")
    secret = bytes.fromhex(creds["totp_key"])

    page.fill("#id_token", pyotp.TOTP(base64.b32encode(secret).decode()).now())
    page.click("form:has(#id_token) button[type=submit]")
    page.wait_for_load_state("networkidle")


def _measure(page: Any, base: str) -> dict[str, float]:
    started = time.perf_counter()
    page.goto(f"{base}/reports/")
    charts = page.locator("[data-chart]").count()
    page.wait_for_function(
        f"document.querySelectorAll('[data-chart][data-drawn=\"true\"]').length >= {charts}"
    )
    figures: dict[str, float] = page.evaluate(TIMING)
    figures["charts_drawn"] = (time.perf_counter() - started) * 1000
    figures["charts"] = charts
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--credentials", type=Path, default=Path("var/demo-admin.json"))
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    creds = json.loads(args.credentials.read_text())
    from playwright.sync_api import sync_playwright  # dev dependency

    chromium = next(filter(None, map(shutil.which, ("chromium", "chromium-browser"))), None)
    print(f"load before: {' / '.join(f'{x:.2f}' for x in os.getloadavg())} (1/5/15 min)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        _sign_in(page, args.base_url, creds)
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        results: dict[str, list[dict[str, float]]] = {"cold": [], "warm": []}
        for kind in ("cold", "warm"):
            cdp.send("Network.setCacheDisabled", {"cacheDisabled": kind == "cold"})
            _measure(page, args.base_url)  # settle: server caches, template compile
            for _ in range(args.runs):
                results[kind].append(_measure(page, args.base_url))
        browser.close()
    for kind, runs in results.items():
        print(f"--- {kind} cache, {len(runs)} runs, median (min-max) ms ---")
        for key in (
            "server_response",
            "html_received",
            "first_paint",
            "first_contentful_paint",
            "dom_content_loaded",
            "load",
            "charts_drawn",
        ):
            values = [run[key] for run in runs if run.get(key) is not None]
            print(
                f"{key:24} {statistics.median(values):7.0f}  ({min(values):.0f}-{max(values):.0f})"
            )
        last = runs[-1]
        print(f"{'charts':24} {last['charts']:7.0f}")
        print(
            f"{'plotly.js on the wire':24} {last['plotly_transfer'] or 0:7,.0f} B "
            f"(body {last['plotly_body'] or 0:,.0f} B)"
        )
    print(f"load after: {' / '.join(f'{x:.2f}' for x in os.getloadavg())} (1/5/15 min, 2 CPUs)")


if __name__ == "__main__":
    main()
