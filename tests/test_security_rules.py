"""Security rules as lint rules (docs/architecture.md, "Rules"), over the whole tree.

Each rule parses every Python file of the project with :mod:`ast`, so it keeps
protecting code written after it, and each has a self-test on a small bad example so
a rule that silently stops matching fails too.

a. Only ``luxmail/crypto.py`` (and its tests) touches the primitives: nobody else reaches
   ``crypto.encrypt``/``crypto.decrypt`` or a private name of the module, constructs
   ``crypto.Access`` or imports ``AESGCM`` — through any alias, attribute, relative
   import or constant ``getattr``; what cannot be followed (computed ``getattr``, the
   module passed as a value, ``importlib``/``sys.modules``) is refused. PHI is read with
   ``crypto.reveal`` and an audited ``phi_access``.
b. Celery calls (``.delay``, ``.apply_async``, signatures) pass no PHI-named values.
c. Logger calls format no PHI-named values.
d. Every Celery task takes only ids, counts and short codes: parameters named
   ``*_id``/``*_ids`` or on an allow-list, annotated ``int``/``str``/``bool`` (or lists
   or optionals of those); no ``*args``/``**kwargs``.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SKIP_DIRS = {
    ".venv",
    "venv",
    ".git",
    "var",
    "node_modules",
    "static",
    "build",
    "dist",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
}
CRYPTO_OWNERS = {
    "luxmail/crypto.py",
    "luxmail/tests/test_crypto.py",
    "luxmail/tests/test_phi_access.py",
}

# Words that name PHI when they appear as a whole "_"-separated part of an identifier.
# The health words follow ContactProfile's PHI fields (test_phi_words_cover_the_phi_fields).
PHI_WORDS = {
    # identity
    "email", "emails", "phone", "phones", "phi", "ssn", "mrn", "mrns", "sex",
    "dob", "birthdate", "birthday", "birthdays",
    # health
    "condition", "conditions", "diagnosis", "diagnoses", "icd", "icd10",
    "medication", "medications", "prescription", "prescriptions", "allergy", "allergies",
    "provider", "providers", "physician", "appointment", "appointments", "visit", "visits",
    "procedure", "procedures", "treatment", "treatments", "symptom", "symptoms",
    "insurance", "insurer", "payer", "immunization", "immunizations",
}  # fmt: skip
PHI_PHRASES = [
    ("first", "name"),
    ("last", "name"),
    ("full", "name"),
    ("patient", "name"),
    ("date", "of", "birth"),
    ("birth", "date"),
    ("zip", "code"),
    ("postal", "code"),
    ("medical", "record"),
    ("social", "security"),
    ("health", "plan"),
]
# Identifiers that look like "not a value" (``*_id``) but hold one: a health-plan member
# id or a record number is PHI itself, unlike a database id.
PHI_IDENTIFIER_PHRASES = [
    ("member", "id"),
    ("member", "number"),
    ("subscriber", "id"),
    ("policy", "number"),
    ("record", "number"),
    ("mrn", "id"),
]
# Identifiers that name something about PHI without holding it.
NOT_A_VALUE_SUFFIXES = (
    "_id",
    "_ids",
    "_count",
    "_counts",
    "_hash",
    "_index",
    "_token",
    "_tokens",
    "_field",
    "_fields",
    "_policy",
    "_enabled",
    "_required",
    "_allowed",
    "_access",
)
NOT_A_VALUE_PREFIXES = ("is_", "has_", "uses_", "needs_", "n_", "num_")

TASK_PARAM_ALLOW_LIST = {
    "batch_size",
    "limit",
    "attempt",
    "chain",
    "dry_run",
    "force",
    "reason_code",
    "invocation",
}
TASK_ANNOTATIONS = {
    "int",
    "str",
    "bool",
    "list[int]",
    "list[str]",
    "int | None",
    "str | None",
    "list[int] | None",
    "list[str] | None",
    "Optional[int]",
    "Optional[str]",
}
LOG_METHODS = {"debug", "info", "warning", "warn", "error", "exception", "critical", "log"}
CELERY_CALLS = {"delay", "apply_async", "s", "si", "signature", "send_task"}


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


def python_files() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT)
        if any(part in SKIP_DIRS or part.endswith(".egg-info") for part in relative.parts):
            continue
        yield relative.as_posix(), ast.parse(path.read_text(encoding="utf-8"), str(relative))


def dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{dotted(node.value)}.{node.attr}"
    if isinstance(node, ast.Call):
        return dotted(node.func)
    return ""


def _has_phrase(parts: list[str], phrases: list[tuple[str, ...]]) -> bool:
    return any(
        tuple(parts[i : i + len(phrase)]) == phrase
        for phrase in phrases
        for i in range(len(parts) - len(phrase) + 1)
    )


def is_phi_name(identifier: str) -> bool:
    name = identifier.lower().strip("_")
    if _has_phrase(name.split("_"), PHI_IDENTIFIER_PHRASES):
        return True
    if not name or name.endswith(NOT_A_VALUE_SUFFIXES) or name.startswith(NOT_A_VALUE_PREFIXES):
        return False
    parts = name.split("_")
    if PHI_WORDS.intersection(parts):
        return True
    return _has_phrase(parts, PHI_PHRASES)


def phi_names_in(node: ast.AST) -> list[str]:
    """PHI-looking identifiers an expression passes along (names, attributes, keys)."""
    found = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and is_phi_name(sub.id):
            found.append(sub.id)
        elif isinstance(sub, ast.Attribute) and is_phi_name(sub.attr):
            found.append(dotted(sub))
        elif isinstance(sub, ast.keyword) and sub.arg and is_phi_name(sub.arg):
            found.append(sub.arg)
        elif (
            isinstance(sub, ast.Subscript)
            and isinstance(sub.slice, ast.Constant)
            and isinstance(sub.slice.value, str)
            and is_phi_name(sub.slice.value)
        ):
            found.append(f"{dotted(sub.value)}[{sub.slice.value!r}]")
        elif isinstance(sub, ast.Dict):
            for key in sub.keys:
                if (
                    isinstance(key, ast.Constant)
                    and isinstance(key.value, str)
                    and is_phi_name(key.value)
                ):
                    found.append(repr(key.value))
        elif isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            # "%(email)s"-style named placeholders in a format string.
            found += [n for n in re.findall(r"%\((\w+)\)", sub.value) if is_phi_name(n)]
    return found


# --- rule a: crypto primitives ----------------------------------------------------------

CRYPTO_MODULE = "luxmail.crypto"
# Public names of luxmail.crypto that hand out plaintext or forge an access.
CRYPTO_FORBIDDEN = {"encrypt", "decrypt"}
CRYPTO_DUNDERS_ALLOWED = {"__name__", "__doc__", "__file__"}
LOW_LEVEL_CIPHERS = "cryptography.hazmat.primitives.ciphers.aead"
# Raw symmetric ciphers; S/MIME may import ``ciphers.algorithms`` to name one.
RAW_CIPHER_NAMES = {
    "aead",
    "AESGCM",
    "AESGCMSIV",
    "AESOCB3",
    "AESCCM",
    "ChaCha20Poly1305",
    "Cipher",
}
DYNAMIC_IMPORTS = {"import_module", "__import__", "importlib.import_module", "find_spec"}


def constant_string(node: ast.AST) -> str | None:
    """The value of a string expression built from constants only, else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = constant_string(node.left), constant_string(node.right)
        return None if left is None or right is None else left + right
    if isinstance(node, ast.JoinedStr):
        parts = [constant_string(v) for v in node.values]
        return None if None in parts else "".join(p for p in parts if p is not None)
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "join"
        and len(node.args) == 1
        and isinstance(node.args[0], ast.List | ast.Tuple)
    ):
        sep = constant_string(node.func.value)
        parts = [constant_string(e) for e in node.args[0].elts]
        if sep is None or None in parts:
            return None
        return sep.join(p for p in parts if p is not None)
    return None


def _imported_module(path: str, node: ast.ImportFrom) -> str:
    """The absolute module of a ``from … import``, relative imports resolved by path."""
    if not node.level:
        return node.module or ""
    package = path.split("/")[:-1]
    base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
    return ".".join([*base, *([node.module] if node.module else [])])


def _names_crypto(node: ast.AST) -> bool:
    """A module-name expression that is, or may be built to be, luxmail.crypto.

    Non-constant names (``f"{app}.demo"``) are allowed unless a constant piece of them
    mentions ``crypto``; what such a module hands out is caught by the getattr rule.
    """
    name = constant_string(node)
    if name is not None:
        return name.startswith((CRYPTO_MODULE, LOW_LEVEL_CIPHERS))
    pieces = [
        sub.value
        for sub in ast.walk(node)
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str)
    ]
    return any("crypt" in piece for piece in pieces)


def _forbidden_crypto_name(name: str) -> bool:
    if name in CRYPTO_FORBIDDEN or name == "*":
        return True
    return name.startswith("_") and name not in CRYPTO_DUNDERS_ALLOWED


class _CryptoBindings:
    """Names a module binds to ``luxmail.crypto``, to the ``luxmail`` package and to
    ``crypto.Access``, through imports, ``as`` aliases and plain assignments."""

    def __init__(self, path: str, tree: ast.Module) -> None:
        self.module: set[str] = {"crypto"}  # a bare ``crypto`` is taken to be ours
        self.package: set[str] = set()
        self.access: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name == CRYPTO_MODULE and alias.asname:
                        self.module.add(alias.asname)
                    elif alias.name.split(".")[0] == "luxmail" and not alias.asname:
                        self.package.add("luxmail")
                    elif alias.name == "luxmail" and alias.asname:
                        self.package.add(alias.asname)
            elif isinstance(node, ast.ImportFrom):
                module = _imported_module(path, node)
                for alias in node.names:
                    bound = alias.asname or alias.name
                    if module == "luxmail" and alias.name == "crypto":
                        self.module.add(bound)
                    elif module == CRYPTO_MODULE and alias.name == "Access":
                        self.access.add(bound)
        # Assignments (x = crypto, y = x, a = crypto.Access) until nothing new is bound.
        changed = True
        while changed:
            changed = False
            for node in ast.walk(tree):
                targets: list[ast.expr] = []
                value: ast.expr | None = None
                if isinstance(node, ast.Assign):
                    targets, value = node.targets, node.value
                elif isinstance(node, ast.AnnAssign | ast.NamedExpr) and node.value is not None:
                    targets, value = [node.target], node.value
                if value is None:
                    continue
                for target in targets:
                    if not isinstance(target, ast.Name):
                        continue
                    for kind, test in (
                        (self.module, self.is_module),
                        (self.package, self.is_package),
                        (self.access, self.is_access),
                    ):
                        if test(value) and target.id not in kind:
                            kind.add(target.id)
                            changed = True

    def is_package(self, node: ast.AST) -> bool:
        return isinstance(node, ast.Name) and node.id in self.package

    def is_module(self, node: ast.AST) -> bool:
        if isinstance(node, ast.Name):
            return node.id in self.module
        # luxmail.crypto, and any other ``<something>.crypto`` we cannot resolve.
        return isinstance(node, ast.Attribute) and node.attr == "crypto"

    def is_access(self, node: ast.AST) -> bool:
        if isinstance(node, ast.Name):
            return node.id in self.access
        return (
            isinstance(node, ast.Attribute) and node.attr == "Access" and self.is_module(node.value)
        )


def crypto_primitive_violations(path: str, tree: ast.Module) -> list[Violation]:
    """Nothing outside luxmail/crypto.py reaches the primitives, however it is spelled.

    Follows every name bound to ``luxmail.crypto`` (``import luxmail.crypto``, ``from
    luxmail import crypto as c``, ``c2 = c``, relative imports inside ``luxmail``),
    attribute access on it, ``getattr`` with constant strings (``"dec" + "rypt"``),
    and refuses what cannot be followed: a dynamic ``getattr``, the module passed on as a
    value, ``vars()``/``__dict__``, ``importlib`` or ``sys.modules`` look-ups.
    """
    if path in CRYPTO_OWNERS:
        return []
    found: list[Violation] = []
    bindings = _CryptoBindings(path, tree)
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}

    def flag(node: ast.AST, message: str) -> None:
        found.append(Violation(path, getattr(node, "lineno", 0), message))

    for node in ast.walk(tree):
        parent = parents.get(node)
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(LOW_LEVEL_CIPHERS):
                    flag(node, f"imports {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            module = _imported_module(path, node)
            names = {alias.name for alias in node.names}
            if names & RAW_CIPHER_NAMES or module.startswith(LOW_LEVEL_CIPHERS):
                flag(node, f"imports {sorted(names)} from {module} (raw ciphers)")
            if module == CRYPTO_MODULE:
                bad = sorted(n for n in names if _forbidden_crypto_name(n))
                if bad:
                    flag(node, f"imports {bad} from {CRYPTO_MODULE}")
            if module.startswith(CRYPTO_MODULE + "."):
                flag(node, f"imports from inside {CRYPTO_MODULE}")
        elif isinstance(node, ast.Attribute):
            if node.attr in {"AESGCM", "ciphers"}:
                # keyring().ciphers hands out the raw AES-GCM objects.
                flag(node, f"uses {dotted(node)}")
            elif bindings.is_module(node.value) and _forbidden_crypto_name(node.attr):
                flag(node, f"uses {dotted(node)}; use seal/reveal")
        elif isinstance(node, ast.Name) and node.id == "AESGCM":
            flag(node, "uses AESGCM")
        elif isinstance(node, ast.Call):
            func = dotted(node.func)
            first = node.args[0] if node.args else None
            if bindings.is_access(node.func):
                flag(node, f"constructs {func}(); only crypto.phi_access() may")
            elif func in {"getattr", "hasattr", "setattr", "delattr"} and len(node.args) > 1:
                name = constant_string(node.args[1])
                if not bindings.is_module(node.args[0]):
                    # getattr(<anything>, "decrypt"): whatever the object, that name is ours.
                    if name in CRYPTO_FORBIDDEN:
                        flag(node, f"{func}(…, {name!r})")
                elif func in {"setattr", "delattr"}:
                    flag(node, f"{func}() on {CRYPTO_MODULE}")
                elif name is None:
                    flag(node, f"dynamic {func}() on {CRYPTO_MODULE}")
                elif _forbidden_crypto_name(name):
                    flag(node, f"{func}({dotted(node.args[0])}, {name!r})")
            elif (func.split(".")[-1] in DYNAMIC_IMPORTS or func.endswith("sys.modules.get")) and (
                first is not None and _names_crypto(first)
            ):
                flag(node, f"{func}() reaches {CRYPTO_MODULE} dynamically")
        elif (
            isinstance(node, ast.Subscript)
            and dotted(node.value).endswith("sys.modules")
            and isinstance(node.ctx, ast.Load)
            and _names_crypto(node.slice)
        ):
            flag(node, f"looks up {CRYPTO_MODULE} in sys.modules")
        # The module itself may only be imported, aliased and have attributes read:
        # handed to anything else (a function, a container), it can no longer be followed.
        if (
            isinstance(node, ast.Name | ast.Attribute)
            and bindings.is_module(node)
            and not isinstance(getattr(node, "ctx", None), ast.Store)
        ):
            fine = (
                (isinstance(parent, ast.Attribute) and parent.value is node)
                or (isinstance(parent, ast.Assign) and parent.value is node)
                or (isinstance(parent, ast.AnnAssign | ast.NamedExpr) and parent.value is node)
                or (
                    isinstance(parent, ast.Call)
                    and dotted(parent.func) in {"getattr", "hasattr", "setattr", "delattr"}
                )
            )
            if not fine:
                flag(node, f"passes the {CRYPTO_MODULE} module on as a value")
    return found


# --- rule b: Celery call arguments --------------------------------------------------------


def celery_argument_violations(path: str, tree: ast.Module) -> list[Violation]:
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr not in CELERY_CALLS:
            continue
        if node.func.attr in {"s", "si", "signature"} and not node.args and not node.keywords:
            continue
        payload = [*node.args, *node.keywords]
        names = [name for arg in payload for name in phi_names_in(arg)]
        if names:
            found.append(
                Violation(path, node.lineno, f".{node.func.attr}() passes PHI-named {names}")
            )
    return found


# --- rule c: logger calls -----------------------------------------------------------------


def _is_logger(node: ast.AST) -> bool:
    name = dotted(node).lower()
    last = name.split(".")[-1]
    return "log" in last and last not in {"dialog", "catalog", "backlog", "blog"}


def logging_violations(path: str, tree: ast.Module) -> list[Violation]:
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr not in LOG_METHODS or not _is_logger(node.func.value):
            continue
        names = [name for arg in [*node.args, *node.keywords] for name in phi_names_in(arg)]
        if names:
            found.append(Violation(path, node.lineno, f"logs PHI-named {names}"))
    return found


# --- rule d: Celery task signatures --------------------------------------------------------


def _is_task_decorator(node: ast.expr) -> bool:
    target = node.func if isinstance(node, ast.Call) else node
    name = dotted(target)
    return name in {"shared_task", "task", "celery.shared_task"} or name.endswith(".task")


def task_signature_violations(path: str, tree: ast.Module) -> list[Violation]:
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if not any(_is_task_decorator(d) for d in node.decorator_list):
            continue
        where = f"task {node.name}()"
        arguments = node.args
        if arguments.vararg or arguments.kwarg:
            found.append(Violation(path, node.lineno, f"{where} takes *args/**kwargs"))
        params = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
        if params and params[0].arg == "self":  # bind=True
            params = params[1:]
        for param in params:
            name = param.arg
            if not (name.endswith(("_id", "_ids")) or name in TASK_PARAM_ALLOW_LIST):
                found.append(
                    Violation(path, node.lineno, f"{where} parameter {name!r} is not an id")
                )
            annotation = ast.unparse(param.annotation) if param.annotation else None
            if annotation not in TASK_ANNOTATIONS:
                found.append(
                    Violation(
                        path,
                        node.lineno,
                        f"{where} parameter {name!r} is annotated {annotation!r}, "
                        "not int/str/bool (or a list/optional of them)",
                    )
                )
    return found


RULES = {
    "crypto primitives only in luxmail/crypto.py": crypto_primitive_violations,
    "no PHI in Celery task arguments": celery_argument_violations,
    "no PHI in log calls": logging_violations,
    "Celery tasks take ids": task_signature_violations,
}


@pytest.fixture(scope="module")
def tree() -> list[tuple[str, ast.Module]]:
    files = list(python_files())
    assert any(path == "luxmail/crypto.py" for path, _ in files)  # the walk found the code
    return files


@pytest.mark.parametrize("rule", RULES)
def test_rule_holds_on_the_whole_tree(tree, rule):
    violations = [v for path, module in tree for v in RULES[rule](path, module)]
    assert not violations, f"{rule}:\n" + "\n".join(map(str, violations))


def test_the_tree_has_celery_tasks_to_check(tree):
    tasks = [
        node.name
        for _, module in tree
        for node in ast.walk(module)
        if isinstance(node, ast.FunctionDef)
        and any(_is_task_decorator(d) for d in node.decorator_list)
    ]
    assert "healthcheck" in tasks


# --- the rules catch what they should (self-tests on bad examples) -----------------------

BAD = {
    crypto_primitive_violations: [
        "from luxmail import crypto\ncrypto.decrypt(blob, aad)",
        "import luxmail.crypto\nluxmail.crypto.encrypt(b'x', b'aad')",
        "from luxmail.crypto import decrypt",
        "from cryptography.hazmat.primitives.ciphers.aead import AESGCM",
        "from cryptography.hazmat.primitives.ciphers import aead\naead.AESGCM(key)",
        "from luxmail import crypto\ncrypto.keyring().ciphers['k1'].decrypt(n, ct, aad)",
        "from luxmail import crypto\ncrypto._decode('text', raw)",
        # Aliases and spellings that the first version of this rule let through.
        "from luxmail import crypto as c\nc.decrypt(blob, aad)",
        "import luxmail.crypto as lc\nlc.decrypt(blob, aad)",
        "import luxmail.crypto\nluxmail.crypto.decrypt(blob, aad)",
        "import luxmail as lx\nlx.crypto.decrypt(blob, aad)",
        "from luxmail import crypto as c\nc2 = c\nf = c2.decrypt\nf(blob, aad)",
        "from luxmail import crypto\nd = crypto.decrypt",
        "from luxmail import crypto\ngetattr(crypto, 'dec' + 'rypt')(blob, aad)",
        "from luxmail import crypto\ngetattr(crypto, f'{\"dec\"}rypt')(blob, aad)",
        "from luxmail import crypto\ngetattr(crypto, ''.join(['de', 'crypt']))(blob, aad)",
        "from luxmail import crypto as c\nname = pick()\ngetattr(c, name)(blob, aad)",
        "from luxmail import crypto\nsetattr(crypto, 'reveal', lambda *a, **k: None)",
        "from luxmail.crypto import _decrypt as d",
        "from luxmail.crypto import decrypt as d",
        "from luxmail.crypto import *",
        "from luxmail import crypto\ncrypto.__dict__['decrypt'](blob, aad)",
        "from luxmail import crypto\nvars(crypto)['decrypt'](blob, aad)",
        "from luxmail import crypto\nmodules = [crypto]\nmodules[0].decrypt(blob, aad)",
        "from luxmail import crypto\nrun(crypto)",
        "import importlib\nimportlib.import_module('luxmail.crypto').decrypt(blob, aad)",
        "m = __import__('luxmail.crypto', fromlist=['x'])",
        "import sys\nsys.modules['luxmail.' + 'crypto'].decrypt(blob, aad)",
        "getattr(module, 'decrypt')(blob, aad)",
        "from luxmail import crypto\ncrypto.Access(purpose='x', actor_id=None, phi=True)",
        "from luxmail.crypto import Access as A\nA(purpose='x', phi=True)",
        "from luxmail import crypto\nmake = crypto.Access\nmake(phi=True)",
        "from luxmail import crypto\ncrypto._ISSUED_PHI.add(forged)",
        "import cryptography.hazmat.primitives.ciphers.aead as a\ngetattr(a, 'AES' + 'GCM')",
        "from cryptography.hazmat.primitives.ciphers import Cipher",
    ],
    celery_argument_violations: [
        "send_welcome.delay(contact.email)",
        "send_welcome.delay(contact_id, first_name=first_name)",
        "send_welcome.apply_async(args=[contact.phone])",
        "send_welcome.apply_async(kwargs={'email': address})",
        "send_welcome.s(date_of_birth).delay()",
        "send_welcome.delay(phi)",
        "remind.delay(contact_id, appointment=next_appointment)",
        "refill.apply_async(args=[profile.medications])",
    ],
    logging_violations: [
        "logger.info('sending to %s', contact.email)",
        "log.warning(f'bad phone {phone}')",
        "logging.error('failed for %(email)s', {'email': x})",
        "self.logger.debug('dob', extra={'dob': dob})",
        "logger.exception('import failed for %s', row.last_name)",
        # Health fields (issue 13): the rule knows more than names and addresses.
        "logger.info('row %s: %s', n, profile.conditions)",
        "logger.debug('meds %r', medications)",
        "logger.info('provider %s', contact.primary_provider)",
        "logger.info('next visit %s', next_appointment)",
        "logger.warning('bad date %s', birth_date)",
        "logger.info('plan %s', profile.insurance_plan)",
        "logger.info('member %s', member_id)",
        "logger.info('zip %s', row['zip_code'])",
        "logger.info('dx %(diagnosis)s', values)",
        "logger.info('allergies %s', allergies)",
        "logger.info('procedure %s', procedure_code)",
        "logger.info('mrn %s', mrn)",
    ],
    task_signature_violations: [
        "@shared_task\ndef send(contact):\n    pass",
        "@shared_task\ndef send(email: str):\n    pass",
        "@app.task(bind=True)\ndef send(self, contact_id):\n    pass",
        "@shared_task()\ndef send(contact_id: int, *args: int):\n    pass",
        "@celery_app.task\ndef send(contact_ids: dict):\n    pass",
    ],
}
GOOD = {
    crypto_primitive_violations: [
        "from luxmail import crypto\ncrypto.reveal(obj, 'note', access=access)",
        "crypto.reencrypt(envelope, aad)",
        "gpg.encrypt(data, recipients)",
        "primary = crypto.keyring().primary_id",
        "from luxmail import crypto as c\nc.reveal(obj, 'note', access=c.phi_access(actor=u))",
        "from luxmail.crypto import reveal, seal\nseal(obj, 'note', 'x')",
        "import luxmail.crypto\nluxmail.crypto.blind_token('email', value)",
        "from luxmail import crypto\ndef f(access: crypto.Access) -> None:\n    pass",
        "from luxmail import crypto\ngetattr(crypto, 'reveal')",
        "from cryptography.hazmat.primitives.ciphers import algorithms\nalgorithms.AES256",
        "import importlib\nimportlib.import_module(f'{app}.demo')",
        "import sys\nsys.modules[spec.name] = module",
        "from luxmail import audit\naudit.record('x', actor=None)",
    ],
    celery_argument_violations: [
        "send_batch.delay(campaign_id)",
        "send_batch.apply_async((campaign.pk,), countdown=10)",
        "import_run.delay(job_id=job.pk, email_count=3)",
    ],
    logging_violations: [
        "logger.info('batch %s sent %d', batch_id, count)",
        "logger.info('template uses phi: %s', template.uses_phi)",
        "logger.warning('contact %s has no email_hash', contact_id)",
        "logger.info('%d conditions_count for segment %s', conditions_count, segment_id)",
        "logger.info('appointment_field %s', appointment_field)",
    ],
    task_signature_violations: [
        "@shared_task\ndef send(campaign_id: int) -> None:\n    pass",
        "@app.task(bind=True)\ndef send(self, contact_ids: list[int], batch_size: int):\n    pass",
        "@shared_task\ndef tick() -> None:\n    pass",
    ],
}


@pytest.mark.parametrize(
    ("rule", "source"), [(rule, source) for rule, sources in BAD.items() for source in sources]
)
def test_rule_catches_a_bad_example(rule, source):
    assert rule("example.py", ast.parse(source)), f"{rule.__name__} missed:\n{source}"


@pytest.mark.parametrize(
    ("rule", "source"), [(rule, source) for rule, sources in GOOD.items() for source in sources]
)
def test_rule_accepts_a_good_example(rule, source):
    assert rule("example.py", ast.parse(source)) == []


# PHI columns whose names are too generic for a name rule (message parts, a key's
# material, a portal attachment's file name and bytes): the runtime test
# (tests/test_logging_phi.py) covers their values.
GENERIC_PHI_FIELDS = {
    "subject",
    "html",
    "text",
    "body",
    "material",
    "language",
    "journey_stage",
    "filename",
    "content",
}


def test_phi_words_cover_the_phi_fields():
    """Every PHI column of every model is a PHI name for the log and Celery rules."""
    from django.apps import apps

    from luxmail.crypto import EncryptedField

    names = {
        field.name
        for model in apps.get_models()
        for field in model._meta.concrete_fields
        if isinstance(field, EncryptedField) and field.phi and model._meta.app_label != "testapp"
    }
    assert {"conditions", "medications", "birth_date", "primary_provider"} <= names
    missed = sorted(n for n in names - GENERIC_PHI_FIELDS if not is_phi_name(n))
    assert not missed, f"PHI fields the word list does not know: {missed}"


def test_relative_imports_of_crypto_are_followed():
    source = "from . import crypto as c\nc.decrypt(blob, aad)"
    assert crypto_primitive_violations("luxmail/rotation.py", ast.parse(source))
    source = "from ..crypto import decrypt"
    assert crypto_primitive_violations("luxmail/api/views.py", ast.parse(source))
    source = "from .crypto import _decode"
    assert crypto_primitive_violations("luxmail/rotation.py", ast.parse(source))


def test_crypto_owners_may_use_the_primitives():
    source = "from cryptography.hazmat.primitives.ciphers.aead import AESGCM"
    assert crypto_primitive_violations("luxmail/crypto.py", ast.parse(source)) == []
    assert crypto_primitive_violations("luxmail/rotation.py", ast.parse(source))


# --- pages: CSP-compatible, no CDN (docs/architecture.md, rule 9) -------------------------

_INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc=)[^>]*>", re.I)
_INLINE_STYLE = re.compile(r"<[^>]+\sstyle\s*=", re.I)
_INLINE_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.I)
_STYLE_ELEMENT = re.compile(r"<style\b", re.I)
_REMOTE_ASSET = re.compile(
    r"<(?:script|link|img)\b[^>]*\b(?:src|href)\s*=\s*[\"'](?:https?:)?//", re.I
)
# Message bodies (e-mail) are not pages: mail clients need inline styles.
_MAIL_TEMPLATE_DIRS = {"email", "emails", "mail"}


def page_template_violations(path: str, text: str) -> list[str]:
    checks = [
        (_INLINE_SCRIPT, "inline <script> (CSP allows only script files)"),
        (_INLINE_STYLE, "inline style attribute (CSP forbids it; use static/css)"),
        (_STYLE_ELEMENT, "<style> element (CSP forbids it; use static/css)"),
        (_INLINE_HANDLER, "inline event handler (CSP forbids it; use static/js)"),
        (_REMOTE_ASSET, "asset from another origin (vendor it under static/vendor)"),
    ]
    found = []
    for pattern, message in checks:
        for match in pattern.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append(f"{path}:{line}: {message}")
    return found


def page_templates() -> Iterator[tuple[str, str]]:
    for path in sorted(ROOT.rglob("*.html")):
        relative = path.relative_to(ROOT)
        parts = set(relative.parts)
        if parts & SKIP_DIRS or "templates" not in parts or parts & _MAIL_TEMPLATE_DIRS:
            continue
        yield relative.as_posix(), path.read_text(encoding="utf-8")


def test_page_templates_work_under_the_csp_and_use_no_cdn():
    templates = list(page_templates())
    assert any(path == "templates/base.html" for path, _ in templates)
    violations = [v for path, text in templates for v in page_template_violations(path, text)]
    assert not violations, "\n".join(violations)


@pytest.mark.parametrize(
    "source",
    [
        "<script>alert(1)</script>",
        '<p style="color:red">x</p>',
        "<style>p{}</style>",
        '<button onclick="go()">x</button>',
        '<script src="https://cdn.example/htmx.js"></script>',
        '<link rel="stylesheet" href="//cdn.example/pico.css">',
    ],
)
def test_page_rule_catches_a_bad_example(source):
    assert page_template_violations("x.html", source)


def test_page_rule_accepts_a_good_page():
    good = (
        "{% load static %}<script src=\"{% static 'js/luxmail.js' %}\" defer></script>"
        '<link rel="stylesheet" href="{% static \'css/luxmail.css\' %}">'
        '<a href="https://www.hhs.gov/hipaa/">HIPAA</a><p class="muted">ok</p>'
    )
    assert page_template_violations("x.html", good) == []


def test_vendored_assets_are_the_versions_listed_and_nothing_else():
    """static/vendor/ holds exactly what VERSIONS names (refreshed by `make vendor`)."""
    vendor = ROOT / "static" / "vendor"
    listed = {}
    for line in (vendor / "VERSIONS").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        spec, _path, arrow, target = line.split()
        assert arrow == "->", line
        listed[target] = spec.rsplit("@", 1)[1]
    present = {p.name for p in vendor.iterdir()} - {"VERSIONS", "update.sh"}
    assert present == set(listed), "vendor files and VERSIONS disagree"
    for target, version in listed.items():
        head = (vendor / target).read_text(encoding="utf-8")
        assert version in head, f"{target} does not carry version {version}"
