"""Static files compressed in ``make run`` too.

In production ``collectstatic`` writes gzip and Brotli copies beside every hashed file
(``CompressedManifestStaticFilesStorage``) and WhiteNoise serves them with a
far-future ``Cache-Control``. In ``dev`` (``DEBUG``) WhiteNoise serves the source tree
through the finders so an edited file shows on reload, and would send the vendored
plotly.js (1.2 MB) uncompressed on every report page. This middleware keeps the
source-tree serving and adds compressed copies, made on first request and again when
the source changes, under ``LUXMAIL_VAR_DIR/static-compressed`` (never in the tree).
"""

from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path
from typing import Any
from wsgiref.headers import Headers

from django.conf import settings
from whitenoise.middleware import WhiteNoiseMiddleware
from whitenoise.responders import StaticFile

# Text formats worth compressing; images and fonts are compressed already.
COMPRESSIBLE = (".js", ".css", ".svg", ".json", ".map", ".txt", ".html")
MIN_SIZE = 1024  # below this the headers outweigh the saving


def compressed_copy(path: str, cache_dir: Path) -> str | None:
    """The gzip copy of ``path`` in ``cache_dir``, (re)written when missing or older
    than the source; ``None`` for a file not worth compressing."""
    if not path.endswith(COMPRESSIBLE):
        return None
    source = os.stat(path)
    if source.st_size < MIN_SIZE:
        return None
    name = hashlib.sha256(path.encode()).hexdigest()[:32] + ".gz"
    target = cache_dir / name
    try:
        if target.stat().st_mtime >= source.st_mtime:
            return str(target)
    except FileNotFoundError:
        pass
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.part")
    partial.write_bytes(gzip.compress(Path(path).read_bytes(), compresslevel=6, mtime=0))
    os.replace(partial, target)  # atomic: a concurrent request never reads half a file
    return str(target)


class CompressingWhiteNoiseMiddleware(WhiteNoiseMiddleware):
    """WhiteNoise that, when it serves from the source tree (``DEBUG``: autorefresh),
    answers ``Accept-Encoding: gzip`` with a compressed copy; otherwise plain WhiteNoise
    (production serves what ``collectstatic`` compressed)."""

    def get_static_file(self, path: str, url: str, stat_cache: Any = None) -> StaticFile:
        static_file = super().get_static_file(path, url, stat_cache=stat_cache)
        if not self.autorefresh:
            return static_file
        copy = compressed_copy(path, Path(settings.VAR_DIR) / "static-compressed")
        if copy is None:
            return static_file
        headers = self._headers(path, url)
        return StaticFile(path, headers, encodings={"gzip": copy})

    def _headers(self, path: str, url: str) -> list[tuple[str, str]]:
        # The headers WhiteNoise.get_static_file gives the file (it does not expose them).
        headers = Headers([])
        self.add_mime_headers(headers, path, url)
        self.add_cache_headers(headers, path, url)
        if self.allow_all_origins:
            headers["Access-Control-Allow-Origin"] = "*"
        if self.add_headers_function is not None:
            self.add_headers_function(headers, path, url)
        return list(headers.items())
