"""Static files go out compressed (issue #20: the report page waited on 1.2 MB of plotly):
in ``make run`` through the compressed copies luxmail.static_files makes, in production
through what collectstatic wrote (tests/test_production_smoke.py checks that path)."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

from django.conf import settings as django_settings
from django.http import HttpResponse
from django.test import RequestFactory

from luxmail.static_files import CompressingWhiteNoiseMiddleware, compressed_copy

PLOTLY = Path(django_settings.BASE_DIR) / "static" / "vendor" / "plotly-basic.min.js"


def _middleware(settings):
    settings.DEBUG = True
    settings.WHITENOISE_AUTOREFRESH = True
    settings.WHITENOISE_USE_FINDERS = True
    return CompressingWhiteNoiseMiddleware(lambda request: HttpResponse(status=404))


def _body(response) -> bytes:
    return b"".join(response.streaming_content)


def test_dev_server_sends_plotly_gzipped(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    middleware = _middleware(settings)
    url = "/static/vendor/plotly-basic.min.js"
    response = middleware(RequestFactory().get(url, HTTP_ACCEPT_ENCODING="gzip, br"))
    assert response.status_code == 200
    assert response["Content-Encoding"] == "gzip" and "Accept-Encoding" in response["Vary"]
    body = _body(response)
    original = PLOTLY.read_bytes()
    assert len(body) < len(original) * 0.4
    assert gzip.decompress(body) == original
    assert response["Content-Type"].startswith("text/javascript")

    plain = middleware(RequestFactory().get(url))
    assert "Content-Encoding" not in plain and _body(plain) == original


def test_compressed_copy_follows_the_source_and_skips_what_is_not_worth_it(tmp_path):
    source = tmp_path / "app.js"
    source.write_text("console.log('one');\n" * 200)
    cache = tmp_path / "cache"
    first = compressed_copy(str(source), cache)
    assert first is not None and gzip.decompress(Path(first).read_bytes()) == source.read_bytes()
    source.write_text("console.log('two');\n" * 200)
    later = Path(first).stat().st_mtime + 5
    os.utime(source, (later, later))
    again = compressed_copy(str(source), cache)
    assert again == first and b"two" in gzip.decompress(Path(again).read_bytes())

    small = tmp_path / "small.js"
    small.write_text("1;")
    image = tmp_path / "logo.png"
    image.write_bytes(b"\x89PNG" * 1000)
    assert compressed_copy(str(small), cache) is None
    assert compressed_copy(str(image), cache) is None
