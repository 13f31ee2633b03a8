"""The deploy/ example stays consistent with the code and the operations guide."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"


def _compose(name: str) -> dict:
    return yaml.safe_load((DEPLOY / name).read_text())


def test_compose_runs_every_process_with_one_beat_and_a_replica():
    services = _compose("compose.yaml")["services"]
    assert {"web", "worker", "beat", "bounce", "postgres", "postgres-replica", "redis"} <= set(
        services
    )
    assert services["beat"]["deploy"]["replicas"] == 1
    assert services["web"]["command"][:2] == ["gunicorn", "luxmail.wsgi"]
    assert services["worker"]["command"][:4] == ["celery", "-A", "luxmail", "worker"]
    assert "run_bounce_server" in services["bounce"]["command"]
    app = services["web"]["environment"]
    assert "postgres-replica" in app["LUXMAIL_REPLICA_DATABASE_URL"]
    assert "@postgres:" in app["DATABASE_URL"]
    assert "--appendfsync" in services["redis"]["command"]
    for script in ("primary-init.sh", "replica-entrypoint.sh"):
        assert (DEPLOY / "postgres" / script).is_file()
    worker_host = _compose("compose.worker-host.yaml")["services"]
    assert set(worker_host) == {"worker"}


def test_every_luxmail_variable_of_the_env_example_is_documented():
    names = re.findall(r"^(LUXMAIL_[A-Z0-9_]+)=", (DEPLOY / "env.example").read_text(), re.M)
    names += ["LUXMAIL_REPLICA_DATABASE_URL"]
    operations = (ROOT / "docs" / "operations.md").read_text()
    missing = [name for name in names if f"`{name}`" not in operations]
    assert not missing
