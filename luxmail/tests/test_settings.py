"""Settings fail closed in production, and docs/operations.md stays true.

Each case starts a fresh interpreter with a controlled environment (nothing inherited
but PATH and HOME), because settings are read once per process.
"""

from __future__ import annotations

import ast
import base64
import os
import re
import secrets
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OPERATIONS = ROOT / "docs" / "operations.md"
SETTINGS = ROOT / "luxmail" / "settings.py"

REQUIRED = [
    "SECRET_KEY",
    "LUXMAIL_ENCRYPTION_KEYS",
    "LUXMAIL_BLIND_INDEX_KEY",
    "LUXMAIL_AUDIT_CHECKPOINT_KEYS",
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "LUXMAIL_ALLOWED_HOSTS",
    "LUXMAIL_BASE_URL",
]


def _key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def production_example() -> dict[str, str]:
    """The env block of docs/operations.md, with its ``<…>`` placeholders filled in."""
    text = OPERATIONS.read_text()
    blocks = re.findall(r"```sh\n(.*?)```", text, flags=re.S)
    block = next(b for b in blocks if b.startswith("LUXMAIL_ENV=production"))
    values: dict[str, str] = {}
    for line in block.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, _, value = line.partition("=")

        def fill(match: re.Match[str], name: str = name) -> str:
            hint = match.group(0)
            if name == "SECRET_KEY":
                return secrets.token_urlsafe(64)
            if "generate_key" in hint:
                return _key()
            return "example-" + secrets.token_hex(8)

        values[name.strip()] = re.sub(r"<[^>]*>", fill, value.strip())
    return values


def run_python(env: dict[str, str], code: str, *, var_dir: Path) -> subprocess.CompletedProcess:
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/")}
    clean.update(env)
    clean["LUXMAIL_VAR_DIR"] = str(var_dir)
    clean["DJANGO_SETTINGS_MODULE"] = "luxmail.settings"
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )


SETUP = (
    "import django; django.setup(); from django.conf import settings; print('MODE', settings.MODE)"
)


def last_error(result: subprocess.CompletedProcess) -> str:
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def test_the_production_example_starts(tmp_path):
    result = run_python(production_example(), SETUP, var_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "MODE production" in result.stdout


@pytest.mark.parametrize("name", REQUIRED)
def test_each_missing_production_secret_is_refused_by_name(tmp_path, name):
    env = production_example()
    del env[name]
    result = run_python(env, SETUP, var_dir=tmp_path)
    assert result.returncode != 0
    error = last_error(result)
    assert error.startswith("django.core.exceptions.ImproperlyConfigured"), result.stderr
    assert name in error


def test_the_default_mode_is_production(tmp_path):
    env = production_example()
    del env["LUXMAIL_ENV"]
    del env["SECRET_KEY"]
    result = run_python(env, SETUP, var_dir=tmp_path)
    assert "ImproperlyConfigured" in last_error(result) and "SECRET_KEY" in last_error(result)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"LUXMAIL_DEBUG": "1"}, "LUXMAIL_DEBUG=1 is refused in production"),
        ({"LUXMAIL_BASE_URL": "http://mail.example-health.org"}, "must start with https://"),
        ({"LUXMAIL_SMTP_SECURITY": "none"}, "LUXMAIL_SMTP_SECURITY=none"),
        ({"LUXMAIL_AUDIT_RETENTION_DAYS": "365"}, "LUXMAIL_AUDIT_RETENTION_DAYS must be at least"),
        ({"LUXMAIL_SECURE_COOKIES": "maybe"}, "LUXMAIL_SECURE_COOKIES must be a boolean"),
        ({"LUXMAIL_ENV": "staging"}, "LUXMAIL_ENV must be one of"),
        (
            {"CELERY_BROKER_URL": "amqp://broker.internal//"},
            "LUXMAIL_REDIS_URL is required when CELERY_BROKER_URL is not a Redis URL",
        ),
    ],
)
def test_unsafe_production_values_are_refused(tmp_path, changes, message):
    env = production_example() | changes
    result = run_python(env, SETUP, var_dir=tmp_path)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in last_error(result)
    assert message in last_error(result), result.stderr


def test_production_settings_are_secure(tmp_path):
    code = (
        SETUP
        + "\nprint(settings.DEBUG, settings.SESSION_COOKIE_SECURE, settings.CSRF_COOKIE_SECURE,"
        " settings.SECURE_SSL_REDIRECT, settings.SECURE_HSTS_SECONDS,"
        " settings.SECURE_PROXY_SSL_HEADER, settings.LUXMAIL_DEV_OUTBOX,"
        " settings.CACHES['default']['BACKEND'])"
    )
    result = run_python(production_example(), code, var_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == (
        "False True True True 31536000 ('HTTP_X_FORWARDED_PROTO', 'https') False "
        "django.core.cache.backends.redis.RedisCache"
    )


def test_check_deploy_reports_no_issue_with_the_documented_production_values(tmp_path):
    env = production_example()
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/"),
            **env,
            "LUXMAIL_VAR_DIR": str(tmp_path),
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_dev_mode_generates_its_secrets_once_and_keeps_them_private(tmp_path):
    code = SETUP + "\nprint(settings.SECRET_KEY[:12], settings.LUXMAIL_ENCRYPTION_KEYS[:12])"
    first = run_python({"LUXMAIL_ENV": "dev"}, code, var_dir=tmp_path)
    assert first.returncode == 0, first.stderr
    secrets_file = tmp_path / "dev-secrets.json"
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    second = run_python({"LUXMAIL_ENV": "dev"}, code, var_dir=tmp_path)
    assert second.stdout.splitlines()[-1] == first.stdout.splitlines()[-1]
    # The broker folders a worker needs exist before any worker starts.
    assert (tmp_path / "celery" / "queue").is_dir()
    assert (tmp_path / "celery" / "processed").is_dir()


def variables_read_by_settings() -> set[str]:
    """Every ``env.<fn>("NAME", …)`` call in settings.py (parsed, not grepped)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(SETTINGS.read_text())):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "env"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.add(node.args[0].value)
    return names


def test_every_environment_variable_is_documented():
    names = variables_read_by_settings()
    assert {"SECRET_KEY", "DATABASE_URL", "LUXMAIL_BASE_URL"} <= names  # the parser works
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", OPERATIONS.read_text()))
    missing = sorted(names - documented)
    assert not missing, f"add these to docs/operations.md (Environment variables): {missing}"
    assert "LUXMAIL_ENV" in documented  # read by luxmail/env.py


def test_secrets_can_come_from_files(tmp_path):
    env = production_example()
    key_file = tmp_path / "encryption-keys"
    key_file.write_text(env.pop("LUXMAIL_ENCRYPTION_KEYS") + "\n")
    env["LUXMAIL_ENCRYPTION_KEYS_FILE"] = str(key_file)
    code = SETUP + "\nprint(settings.LUXMAIL_ENCRYPTION_KEYS.split(':')[0])"
    result = run_python(env, code, var_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "k2025a"

    env["LUXMAIL_ENCRYPTION_KEYS_FILE"] = str(tmp_path / "missing")
    missing = run_python(env, SETUP, var_dir=tmp_path)
    assert "LUXMAIL_ENCRYPTION_KEYS_FILE names" in last_error(missing)

    env["LUXMAIL_ENCRYPTION_KEYS_FILE"] = str(key_file)
    env["LUXMAIL_ENCRYPTION_KEYS"] = "k1:" + _key()
    both = run_python(env, SETUP, var_dir=tmp_path)
    assert "Set either LUXMAIL_ENCRYPTION_KEYS or LUXMAIL_ENCRYPTION_KEYS_FILE" in last_error(both)
