"""The pytest plugin runs the suite on a throwaway redis-server of its own.

Each case runs a small pytest session in a subprocess (with the project's pytest
configuration) and looks at what that session saw and left behind.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from django.conf import settings

from luxmail.testing import ROOT, redis_answers, require

INNER = """
import json, os
from django.conf import settings
from luxmail import testing

def test_record():
    server = testing.SESSION_REDIS
    with open(os.environ["OUT"], "w") as handle:
        json.dump({
            "env": os.environ.get("LUXMAIL_REDIS_URL"),
            "settings": settings.REDIS_URL,
            "owned": testing.owns_redis(settings.REDIS_URL),
            "pid": server.process.pid if server else None,
            "dir": str(server.directory) if server else None,
        }, handle)
"""


def _inner_database() -> str:
    """A test database name of this process's own: under pytest-xdist two workers may run
    inner sessions at once, so it derives from this worker's test database (…_gw1)."""
    from django.db import connection

    return str(connection.settings_dict["NAME"]) + "_inner"


def _session(
    tmp_path: Path, *args: str, inner: str = INNER, **env: str
) -> tuple[subprocess.CompletedProcess[str], dict]:
    test_file = tmp_path / "test_inner.py"
    test_file.write_text(inner)
    out = tmp_path / "out.json"
    base = {k: v for k, v in os.environ.items() if k != "LUXMAIL_REDIS_URL"}
    base["LUXMAIL_TEST_DATABASE_NAME"] = _inner_database()
    config = ["-c", str(ROOT / "pyproject.toml"), "--rootdir", str(ROOT)]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", *config, "-q", "-p", "no:randomly", *args, str(test_file)],
        cwd=ROOT,
        env={**base, "OUT": str(out), **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    return result, (json.loads(out.read_text()) if out.exists() else {})


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead too (its parent, the inner pytest, is gone: init reaps it).
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "State:\tZ" not in status.read_text()


@pytest.mark.redis
@pytest.mark.slow
def test_the_session_starts_its_own_redis_and_kills_it_at_the_end(tmp_path):
    require(shutil.which("redis-server") is not None, "redis-server is not installed")
    result, seen = _session(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert seen["env"] == seen["settings"]
    assert seen["owned"] is True
    assert ":6379/" not in seen["settings"]  # not the machine's shared Redis
    assert not _alive(seen["pid"])
    assert not Path(seen["dir"]).exists()


@pytest.mark.redis
@pytest.mark.slow
def test_an_explicit_redis_url_is_used_and_never_owned(tmp_path):
    require(redis_answers(settings.REDIS_URL), "needs Redis")
    named = settings.REDIS_URL.rsplit("/", 1)[0] + "/7"
    other_software = redis.Redis.from_url(named)
    other_software.set("someone-elses-key", "keep me")
    try:
        result, seen = _session(tmp_path, LUXMAIL_REDIS_URL=named)
        assert result.returncode == 0, result.stdout + result.stderr
        assert seen == {
            "env": named,
            "settings": named,
            "owned": False,
            "pid": None,
            "dir": None,
        }
        assert other_software.get("someone-elses-key") == b"keep me"
    finally:
        other_software.delete("someone-elses-key")


@pytest.mark.slow
def test_required_services_without_redis_server_fail_clearly(tmp_path):
    result, seen = _session(tmp_path, LUXMAIL_REQUIRE_SERVICES="1", PATH=str(tmp_path))
    assert result.returncode != 0
    assert "redis-server is not installed" in result.stdout + result.stderr
    assert seen == {}


INNER_XDIST = """
import json, os, time
from pathlib import Path
from django.conf import settings
from django.db import connection
from luxmail import testing

def _record(name):
    Path(settings.VAR_DIR, "mine").write_text(name)
    time.sleep(1)  # both workers are up at once
    server = testing.SESSION_REDIS
    with open(os.environ["OUT"] + "." + os.environ["PYTEST_XDIST_WORKER"], "w") as handle:
        json.dump({
            "redis": settings.REDIS_URL,
            "broker": settings.CELERY_BROKER_URL,
            "owned": testing.owns_redis(settings.REDIS_URL),
            "pid": server.process.pid if server else None,
            "var": str(settings.VAR_DIR),
            "mine": Path(settings.VAR_DIR, "mine").read_text(),
            "database": connection.settings_dict["NAME"],
        }, handle)

def test_one(db):
    _record("one")

def test_two(db):
    _record("two")
"""


@pytest.mark.redis
@pytest.mark.slow
def test_each_xdist_worker_has_its_own_redis_var_dir_and_database(tmp_path):
    require(shutil.which("redis-server") is not None, "redis-server is not installed")
    result, _ = _session(tmp_path, "-n", "2", "--dist", "load", inner=INNER_XDIST)
    assert result.returncode == 0, result.stdout + result.stderr
    seen = [json.loads(path.read_text()) for path in sorted(tmp_path.glob("out.json.gw*"))]
    assert len(seen) == 2, result.stdout
    one, two = seen
    assert one["owned"] and two["owned"]
    assert one["redis"] != two["redis"]
    assert one["broker"] == one["redis"] and two["broker"] == two["redis"]
    assert one["var"] != two["var"]
    assert {one["mine"], two["mine"]} == {"one", "two"}
    assert {one["database"], two["database"]} == {
        _inner_database() + "_gw0",
        _inner_database() + "_gw1",
    }
    for worker in seen:
        assert not _alive(worker["pid"])
        assert not Path(worker["var"]).exists()
