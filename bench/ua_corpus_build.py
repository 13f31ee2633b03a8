"""Rebuild ``corpus.tsv`` from the registry packages named in README.md.

    mkdir /tmp/ua && cd /tmp/ua
    pip download --no-deps --no-binary :all: crawlerdetect==0.4.2 device-detector==6.5.1
    npm pack crawler-user-agents@1.60.0
    for f in *.tar.gz *.tgz; do mkdir -p "x/${f%%.t*}"; tar xzf "$f" -C "x/${f%%.t*}"; done
    .venv/bin/pip install device-detector==6.5.1  # build only: settles disputed rows
    .venv/bin/python bench/ua_corpus_build.py /tmp/ua/x  # ~3 minutes

Writes ``reporting/tests/corpora/ua/corpus.tsv``. Labels come from each source's own
metadata (a fixture's file and client type, a crawler list's membership), never from
LuxMail's classifier. The sampling is deterministic (every n-th entry), so a rebuild from
the same packages gives the same file.
"""

from __future__ import annotations

import csv
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent.parent / "reporting" / "tests" / "corpora" / "ua"
OUT = HERE / "corpus.tsv"

# Category → (expected label, expected automation kind).
EXPECTED = {
    "bot": ("automated", "crawler"),
    "link_preview": ("automated", "link_preview"),
    "scanner": ("automated", "scanner"),
    "browser_desktop": ("human", ""),
    "browser_mobile": ("human", ""),
    "mail_client": ("human", ""),
    "privacy_proxy": ("privacy_proxy", ""),
}
# How a crawler list entry is sorted into a category (for the per-category rates only:
# every one of them is expected automated). Names as the lists spell them.
_PREVIEW = re.compile(
    r"facebookexternalhit|facebot|meta-externalagent|slackbot|slack-imgproxy|twitterbot|"
    r"linkedinbot|whatsapp|discordbot|telegrambot|skypeuripreview|yahoo link preview|"
    r"google web preview|bingpreview|redditbot|embedly|iframely|pinterest|vkshare|"
    r"mastodon|snapchat|viber|line-poker|applenewsbot|microsoftpreview|teams",
    re.I,
)
_SCANNER = re.compile(
    r"safelinks|mimecast|proofpoint|barracuda|ironport|cisco|trend ?micro|symantec|sophos|"
    r"bitdefender|virustotal|urlscan|netcraft|fortinet|forcepoint|zscaler|paloalto|"
    r"security|scanner|phish",
    re.I,
)
_PROXY = re.compile(r"googleimageproxy|yahoomailproxy", re.I)
_MAILISH = re.compile(r"outlook|mail|thunderbird|office", re.I)  # only narrows the slow check
_MOBILE = re.compile(r"mobile|android|iphone|ipad|ipod|blackberry|opera mini|windows phone", re.I)
_MAIL = re.compile(r"microsoft outlook|thunderbird/", re.I)


def _bot_category(agent: str, hint: str = "") -> str:
    if _PROXY.search(agent):
        return "privacy_proxy"
    if _PREVIEW.search(agent) or hint == "Social Media Agent":
        return "link_preview"
    if _SCANNER.search(agent) or hint in {"Security Checker", "Security search bot"}:
        return "scanner"
    return "bot"


def crawler_user_agents(root: Path) -> Iterator[tuple[str, str]]:
    path = root / "crawler-user-agents-1.60.0" / "package" / "crawler-user-agents.json"
    for entry in json.loads(path.read_text(encoding="utf-8")):
        for agent in entry.get("instances", []):
            yield agent, _bot_category(agent)


def _fixtures(root: Path) -> Path:
    package = root / "device_detector-6.5.1" / "device_detector-6.5.1" / "device_detector"
    return package / "tests" / "fixtures" / "upstream"


def device_detector(root: Path) -> Iterator[tuple[str, str]]:
    """Matomo's fixtures: bots, browsers by device type, and PIM (mail) clients."""
    directory = _fixtures(root)
    for path in sorted(directory.glob("*.yml")):
        family = re.sub(r"-\d+$", "", path.stem)
        entries = yaml.safe_load(path.read_text(encoding="utf-8")) or []
        # Every 8th smartphone/tablet browser: the phone files hold ~30,000 near-copies.
        step = 8 if family in {"smartphone", "tablet", "phablet"} else 1
        browsers = 0
        for entry in entries:
            agent = str(entry.get("user_agent") or "")
            if not agent:
                continue
            if "bot" in entry:
                yield agent, _bot_category(agent, str((entry["bot"] or {}).get("category") or ""))
                continue
            client = entry.get("client") or {}
            if _PROXY.search(agent):
                yield agent, "privacy_proxy"
            elif client.get("type") == "pim":
                yield agent, "mail_client"
            elif client.get("type") == "browser" and family in {"desktop"}:
                yield agent, "browser_desktop"
            elif client.get("type") == "browser" and family in {"smartphone", "tablet", "phablet"}:
                browsers += 1
                if browsers % step == 0:
                    yield agent, "browser_mobile"


def crawlerdetect(root: Path) -> Iterator[tuple[str, str]]:
    directory = root / "crawlerdetect-0.4.2" / "crawlerdetect-0.4.2" / "tests" / "fixtures"
    directory = directory / "user_agent"
    for line in (directory / "crawlers.txt").read_text(encoding="utf-8").splitlines():
        if line.strip():
            yield line.strip(), _bot_category(line)
    devices = (directory / "devices.txt").read_text(encoding="utf-8").splitlines()
    mail = 0
    for number, line in enumerate(devices):
        agent = line.strip()
        if not agent:
            continue
        if "/" not in agent:
            continue  # "NULL", "12", "snk": not a user agent at all (no product/version)
        if _MAIL.search(agent):
            mail += 1
            if mail % 4 == 0:  # near-copies differing in .NET tokens: every 4th
                yield agent, "mail_client"
        elif number % 50 == 0:  # 165,000 lines: every 50th
            yield agent, "browser_mobile" if _MOBILE.search(agent) else "browser_desktop"


SOURCES = {
    "crawler-user-agents@1.60.0": crawler_user_agents,
    "device-detector@6.5.1": device_detector,
    "crawlerdetect@0.4.2": crawlerdetect,
}


def _mail_client_per_dd(agent: str) -> bool:
    """Whether Matomo's parser names the agent a mail client (client type "pim"), not a bot."""
    from device_detector import DeviceDetector

    parsed = DeviceDetector(agent).parse()
    client = parsed.all_details.get("client") or {}
    return not parsed.is_bot() and client.get("type") == "pim"


def main(root: Path) -> None:
    seen: set[str] = set()
    rows = []
    disputed = 0
    for source, reader in SOURCES.items():
        for agent, category in reader(root):
            agent = " ".join(agent.split())  # one line, one tab-free field
            if not agent or agent in seen:
                continue
            if category == "bot" and _MAILISH.search(agent) and _mail_client_per_dd(agent):
                # Disputed: the crawler list calls it a crawler, device-detector a mail
                # client (Outlook, Apple Mail, but also "Email Extractor"). Left out.
                disputed += 1
                continue
            seen.add(agent)
            label, kind = EXPECTED[category]
            rows.append((source, category, label, kind, agent))
    with OUT.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\")
        writer.writerow(("source", "category", "expected", "kind", "user_agent"))
        writer.writerows(rows)
    print(f"{len(rows)} user agents → {OUT} ({disputed} disputed left out)")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
