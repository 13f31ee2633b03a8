"""The production process as docs/operations.md describes it: ``collectstatic``, then
``gunicorn luxmail.wsgi`` with ``LUXMAIL_ENV=production`` on real PostgreSQL and Redis,
behind a (simulated) TLS proxy. Checks what only a real deployment shows: HTTPS is
enforced, the security headers and cookie flags are there, WhiteNoise serves the
hashed static files, the dev Outbox does not exist, and the deep health check reports
the missing worker instead of pretending.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from luxmail.testing import free_port, require

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _request(url: str, *, https: bool = True, headers: dict[str, str] | None = None):
    request = urllib.request.Request(url, headers={"Host": "localhost", **(headers or {})})
    if https:
        request.add_header("X-Forwarded-Proto", "https")  # what the TLS proxy sends
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def _production_env(var_dir: Path) -> dict[str, str]:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    database_url = (
        f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
        f"/{db['NAME']}"
    )

    def key() -> str:
        return base64.b64encode(secrets.token_bytes(32)).decode()

    return {
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": os.environ.get("HOME", "/"),
        "LUXMAIL_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "LUXMAIL_ENCRYPTION_KEYS": f"k1:{key()}",
        "LUXMAIL_BLIND_INDEX_KEY": key(),
        "LUXMAIL_AUDIT_CHECKPOINT_KEYS": f"c1:{key()}",
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": settings.CACHES["default"]["LOCATION"],
        "LUXMAIL_ALLOWED_HOSTS": "localhost",
        "LUXMAIL_BASE_URL": "https://localhost",
        "LUXMAIL_VAR_DIR": str(var_dir),
        # The suite's throwaway Redis does not fsync every write, which production
        # refuses for the tracking buffer (reporting/tests/test_durability.py proves
        # that); tracking hits go to PostgreSQL here instead.
        "LUXMAIL_TRACKING_DURABILITY": "postgres",
    }


def test_gunicorn_in_production_mode(tmp_path):
    require(connection.vendor == "postgresql", "needs PostgreSQL (production never uses SQLite)")
    require(settings.CACHES["default"]["BACKEND"].endswith("RedisCache"), "needs a Redis server")
    require((BIN / "gunicorn").exists(), "the repository's .venv is missing (make install)")
    env = _production_env(tmp_path)
    collect = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert collect.returncode == 0, collect.stderr
    port = free_port()
    log = (tmp_path / "gunicorn.log").open("wb")
    server = subprocess.Popen(
        [str(BIN / "gunicorn"), "luxmail.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "2"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, _, body = _request(f"{base}/healthz")
                if status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "gunicorn.log").read_text()
            assert server.poll() is None, (tmp_path / "gunicorn.log").read_text()
            time.sleep(0.3)
        assert body == b"ok"

        # Plain HTTP is redirected to HTTPS.
        status, headers, _ = _request(f"{base}/accounts/login/", https=False)
        assert status == 301 and headers["Location"] == "https://localhost/accounts/login/"

        status, headers, page = _request(f"{base}/accounts/login/")
        assert status == 200
        assert headers["Strict-Transport-Security"] == (
            "max-age=31536000; includeSubDomains; preload"
        )
        assert "default-src 'self'" in headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "same-origin"
        cookies = headers.get_all("Set-Cookie") or []
        csrf = next(c for c in cookies if c.startswith("csrftoken="))
        assert "Secure" in csrf and "HttpOnly" in csrf

        # WhiteNoise serves the hashed, compressed files collectstatic wrote.
        html = page.decode()
        css = html.split('href="/static/css/luxmail.')[1].split('"')[0]
        assert css.endswith(".css") and len(css) > len("css")  # luxmail.<hash>.css
        status, headers, _ = _request(f"{base}/static/css/luxmail.{css}")
        assert status == 200 and "max-age" in headers["Cache-Control"]
        # The report pages' plotly.js (1.2 MB) goes out Brotli- or gzip-compressed and
        # cacheable for good (issue #20).
        manifest = json.loads((tmp_path / "staticfiles" / "staticfiles.json").read_text())
        plotly = manifest["paths"]["vendor/plotly-basic.min.js"]
        for encoding, limit in (("br", 350_000), ("gzip", 420_000)):
            status, headers, body = _request(
                f"{base}/static/{plotly}", headers={"Accept-Encoding": encoding}
            )
            assert status == 200 and headers["Content-Encoding"] == encoding
            assert len(body) < limit and "immutable" in headers["Cache-Control"]

        # The dev Outbox does not exist in production, not even as a login page.
        status, _, _ = _request(f"{base}/dev/outbox/")
        assert status == 404

        # No worker runs here: the deep check says so (and the database/cache are fine).
        status, _, body = _request(f"{base}/healthz?deep=1")
        assert status == 503
        checks = json.loads(body)["checks"]
        assert checks["database"] == "ok" and checks["cache"] == "ok"
        assert checks["worker"].startswith("no worker answered")
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
