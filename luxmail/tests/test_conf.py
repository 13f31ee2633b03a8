"""luxmail/conf.py is the one typed way app code reads LuxMail's settings, and every
``LUXMAIL_*`` name the code uses is documented in docs/operations.md."""

from __future__ import annotations

import ast
import inspect
import re
import typing
from pathlib import Path

import pytest

from luxmail import conf

ROOT = Path(__file__).resolve().parents[2]
OPERATIONS = ROOT / "docs" / "operations.md"
APPS = ("luxmail", "contacts", "campaigns", "portal", "reporting")
CONF = ROOT / "luxmail" / "conf.py"
NAME = re.compile(r"\bLUXMAIL_[A-Z0-9_]*[A-Z0-9]\b")


def app_modules() -> list[Path]:
    """Application code: every module of the apps but their tests."""
    return sorted(
        path
        for app in APPS
        for path in (ROOT / app).rglob("*.py")
        if "tests" not in path.relative_to(ROOT).parts
    )


def luxmail_names(tree: ast.AST) -> set[str]:
    """``LUXMAIL_*`` names in a module: in strings (env reads, getattr, messages),
    attribute reads (``settings.LUXMAIL_X``) and assignments (settings.py)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            names.update(NAME.findall(node.value))
        elif isinstance(node, ast.Attribute):
            names.update(NAME.findall(node.attr))
        elif isinstance(node, ast.Name):
            names.update(NAME.findall(node.id))
    return names


def settings_getattrs(tree: ast.AST) -> list[tuple[int, str]]:
    """``getattr(settings, "LUXMAIL_…"[, default])`` calls, also through an alias of
    ``django.conf.settings`` or ``django.conf`` (``getattr(dj.settings, …)``)."""
    aliases = {"settings"}  # names bound to django.conf.settings
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "django.conf":
            aliases |= {a.asname or a.name for a in node.names if a.name == "settings"}
    hits = []
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "getattr"
            and len(node.args) >= 2
        ):
            continue
        target, name = node.args[0], node.args[1]
        is_settings = (isinstance(target, ast.Name) and target.id in aliases) or (
            isinstance(target, ast.Attribute) and target.attr == "settings"
        )
        literal = isinstance(name, ast.Constant) and isinstance(name.value, str)
        if is_settings and (not literal or str(name.value).startswith("LUXMAIL_")):
            if literal:
                hits.append((node.lineno, str(name.value)))
            elif isinstance(name, ast.Attribute) and name.attr == "setting":
                continue  # luxmail/api/throttling.py: the rate setting a class names
            else:
                hits.append((node.lineno, ast.unparse(name)))
    return sorted(hits)


def test_every_luxmail_name_in_the_code_is_documented():
    used: dict[str, set[str]] = {}
    for path in app_modules():
        for name in luxmail_names(ast.parse(path.read_text(), str(path))):
            used.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    assert {"LUXMAIL_SEND_LEASE_SECONDS", "LUXMAIL_PORTAL_IDLE_SECONDS"} <= set(used)
    documented = set(re.findall(r"`(LUXMAIL_[A-Z0-9_]+)`", OPERATIONS.read_text()))
    missing = {name: sorted(where) for name, where in used.items() if name not in documented}
    assert not missing, f"document these in docs/operations.md (Environment variables): {missing}"


def test_no_app_module_reads_luxmail_settings_with_getattr():
    offenders = {
        str(path.relative_to(ROOT)): hits
        for path in app_modules()
        if path != CONF and (hits := settings_getattrs(ast.parse(path.read_text())))
    }
    assert not offenders, f"read these through luxmail/conf.py: {offenders}"


def test_the_guard_sees_getattr_with_a_default_and_through_an_alias():
    source = (
        "from django import conf as dj\n"
        "from django.conf import settings as s\n"
        'a = getattr(s, "LUXMAIL_SEND_BATCH", 500)\n'
        'b = getattr(dj.settings, "LUXMAIL_X")\n'
        'c = getattr(s, "REDIS_URL", None)\n'
    )
    assert settings_getattrs(ast.parse(source)) == [
        (3, "LUXMAIL_SEND_BATCH"),
        (4, "LUXMAIL_X"),
    ]


def accessors() -> list[tuple[str, typing.Callable[[], object]]]:
    return [
        (name, function)
        for name, function in inspect.getmembers(conf, inspect.isfunction)
        if function.__module__ == conf.__name__ and not name.startswith("_")
    ]


@pytest.mark.parametrize(("name", "function"), accessors(), ids=[n for n, _ in accessors()])
def test_each_accessor_returns_its_declared_type(name, function):
    value = function()
    expected = typing.get_type_hints(function)["return"]
    origin = typing.get_origin(expected)
    if origin is None:
        assert isinstance(value, expected), (name, value)
    elif origin is list:
        assert isinstance(value, list) and all(isinstance(item, str) for item in value)
    elif origin is dict:  # dict[str, str]
        assert isinstance(value, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        )
    else:  # X | None
        assert value is None or isinstance(value, typing.get_args(expected)), (name, value)


def test_every_setting_conf_reads_is_defined_in_settings_py():
    """No accessor leans on a default of its own: settings.py defines each name."""
    source = ast.parse(CONF.read_text())
    read = {
        node.attr
        for node in ast.walk(source)
        if isinstance(node, ast.Attribute) and node.attr.startswith("LUXMAIL_")
    }
    assert len(read) >= 20
    settings_py = (ROOT / "luxmail" / "settings.py").read_text()
    defined = set(re.findall(r"^(LUXMAIL_[A-Z0-9_]+)\s*[:=]", settings_py, re.M))
    assert read <= defined, sorted(read - defined)


def test_accessors_read_the_settings_at_call_time(settings):
    """Tests' ``settings`` overrides (and override_settings) reach the code."""
    settings.LUXMAIL_SEND_LEASE_SECONDS = 2
    settings.LUXMAIL_SEND_CHAINS = 0
    settings.LUXMAIL_PORTAL_IDLE_SECONDS = 42
    settings.LUXMAIL_SMTP_HELO_NAME = ""
    settings.LUXMAIL_MX_CA_FILE = None
    assert conf.send_lease_seconds() == 2
    assert conf.send_chains() == 1  # at least one chain
    assert conf.portal_idle_seconds() == 42
    assert conf.smtp_helo_name() is None
    assert conf.mx_ca_file() is None

    from portal.services import config

    assert config.idle_seconds() == 42
