"""The shape of the code (issue 13, docs/architecture.md "Layers").

``lint-imports`` (in ``make check``) enforces the layers contract in pyproject.toml.
These tests keep the contract honest: a new campaigns module must be placed in a layer
(an unlisted module would be checked by nothing), app code names no module by string,
and the higher apps really register their implementations of the interfaces sending
defines.
"""

from __future__ import annotations

import ast
import importlib
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = ("luxmail", "contacts", "campaigns", "portal", "reporting")


def _contract() -> dict:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (layers,) = [c for c in config["contracts"] if c["type"] == "layers"]
    return layers


def _app_modules() -> list[Path]:
    return [
        path
        for app in APPS
        for path in (ROOT / app).rglob("*.py")
        if "tests" not in path.relative_to(ROOT).parts
        and "migrations" not in path.relative_to(ROOT).parts
    ]


def test_every_campaigns_module_is_in_a_layer():
    listed = {
        part.strip()
        for layer in _contract()["layers"]
        for part in layer.replace("|", ":").split(":")
    }
    unlisted = []
    for path in sorted((ROOT / "campaigns").iterdir()):
        if path.name in ("__init__.py", "__pycache__", "tests"):
            continue
        if path.suffix != ".py" and not (path / "__init__.py").exists():
            continue
        module = f"campaigns.{path.stem}"
        if module not in listed:
            unlisted.append(module)
    assert unlisted == [], f"add these to a layer in pyproject.toml: {unlisted}"


def test_app_code_loads_no_module_by_name():
    offenders = []
    for path in _app_modules():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                names = ["__import__"] if node.func.id == "__import__" else []
            if any(name == "importlib" or name.startswith("importlib.") for name in names) or (
                "__import__" in names
            ):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


def test_higher_apps_register_with_sending():
    from campaigns.sending import hooks
    from portal import channel
    from reporting import tracking

    assert hooks.tracker() is tracking
    assert hooks.portal() is channel


def test_no_cycles_inside_an_app_is_enforced():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (acyclic,) = [c for c in config["contracts"] if c["type"] == "acyclic_siblings"]
    assert set(acyclic["ancestors"]) == set(APPS)


def test_every_job_names_a_registered_task():
    """Services start tasks by name (``<app>/jobs.py``): a renamed task must not leave a
    job that no worker knows."""
    from luxmail.celery import app
    from luxmail.jobs import Job

    app.loader.import_default_modules()
    jobs = []
    for path in _app_modules():
        if path.name != "jobs.py":
            continue
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        values = vars(importlib.import_module(module)).values()
        jobs += [(module, v.name) for v in values if isinstance(v, Job)]
    assert len(jobs) >= 9
    missing = [(module, name) for module, name in jobs if name not in app.tasks]
    assert missing == []


def _function_level_imports() -> list[tuple[Path, int, list[str]]]:
    """(module, line, its lines) of every import inside a function of app code."""
    found = []
    for path in _app_modules():
        source = path.read_text()
        linenos = {
            node.lineno
            for function in ast.walk(ast.parse(source, filename=str(path)))
            if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef)
            for node in ast.walk(function)
            if isinstance(node, ast.Import | ast.ImportFrom)
        }
        found += [(path, lineno, source.splitlines()) for lineno in sorted(linenos)]
    return found


def _import_has_reason(lines: list[str], lineno: int) -> bool:
    """A comment on the import's line, or on the line above the run of imports (and
    blank lines) it belongs to."""
    if "#" in lines[lineno - 1]:
        return True
    index = lineno - 2
    while index >= 0:
        text = lines[index].strip()
        if text.startswith("#"):
            return True
        # Part of a run of imports: an import line, or a name / ")" of a multi-line one.
        in_import = text.startswith(("import ", "from ")) or text == ")"
        in_import = in_import or bool(re.fullmatch(r"\w+( as \w+)?,", text))
        if text and not in_import:
            return False
        index -= 1
    return False


def test_function_level_imports_say_why():
    """docs/architecture.md "Function-level imports": an import inside a function is
    allowed only with its contract-respecting reason written beside it."""
    imports = _function_level_imports()
    assert imports, "the scan found no function-level import at all"
    unexplained = [
        f"{path.relative_to(ROOT)}:{lineno}"
        for path, lineno, lines in imports
        if not _import_has_reason(lines, lineno)
    ]
    assert unexplained == [], f"hoist these or write why beside them: {unexplained}"
