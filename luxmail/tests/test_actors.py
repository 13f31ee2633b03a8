"""Typed actors (luxmail/actors.py): no untyped ``actor`` parameter, and each kind of
actor is recorded in the audit log under the label docs/architecture.md promises."""

import ast
from pathlib import Path

import pytest
from django.contrib.auth.models import AnonymousUser
from django.test import RequestFactory

from contacts.services.lists import contact_list_create
from luxmail import audit
from luxmail.actors import PATIENT, AuditContext, actor_has_perm, user_of
from luxmail.api.authentication import ApiKeyPrincipal
from luxmail.api.services import api_key_create
from portal.services.config import RECIPIENT as PORTAL_RECIPIENT

ROOT = Path(__file__).resolve().parents[2]
APPS = ("luxmail", "contacts", "campaigns", "portal", "reporting", "bench")


def _is_any(annotation: ast.expr | None) -> bool:
    if annotation is None:
        return False
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        try:
            annotation = ast.parse(annotation.value, mode="eval").body
        except SyntaxError:
            return False
    if isinstance(annotation, ast.Name):
        return annotation.id == "Any"
    if isinstance(annotation, ast.Attribute):
        return annotation.attr == "Any"
    if isinstance(annotation, ast.BinOp):  # Any | None
        return _is_any(annotation.left) or _is_any(annotation.right)
    if isinstance(annotation, ast.Subscript):  # Optional[Any]
        return _is_any(annotation.slice)
    return False


def _untyped_actors(source: str, filename: str, *, bare_too: bool = True) -> list[str]:
    """``actor`` parameters (and annotated names) typed ``Any``; unannotated ones too
    when ``bare_too`` (application code, which mypy checks; tests may stay untyped)."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            args = node.args
            for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs]:
                bare = bare_too and arg.annotation is None
                if arg.arg == "actor" and (bare or _is_any(arg.annotation)):
                    found.append(f"{filename}:{arg.lineno} {node.name}(actor)")
        is_name = isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
        if is_name and node.target.id == "actor" and _is_any(node.annotation):
            found.append(f"{filename}:{node.lineno} actor")
    return found


def test_the_scan_sees_every_spelling_of_an_untyped_actor():
    source = (
        "import typing\n"
        "def a(actor: Any): pass\n"
        "def b(*, actor: typing.Any = None): pass\n"
        "def c(actor: 'Any | None'): pass\n"
        "def d(actor): pass\n"
        "def e(actor: Actor): pass\n"
    )
    assert [hit.split()[1] for hit in _untyped_actors(source, "x.py")] == [
        "a(actor)",
        "b(actor)",
        "c(actor)",
        "d(actor)",
    ]


def test_no_actor_parameter_is_any_or_unannotated():
    """No ``actor: Any`` anywhere, and every application ``actor`` parameter is annotated
    (``Actor`` or narrower), so mypy checks what callers pass."""
    found = []
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            relative = path.relative_to(ROOT)
            app_code = "tests" not in relative.parts and relative.parts[0] != "bench"
            found += _untyped_actors(path.read_text(), str(relative), bare_too=app_code)
    assert found == [], "use luxmail.actors.Actor:\n" + "\n".join(found)


@pytest.mark.django_db
def test_staff_user_is_recorded_by_id_and_username(make_user):
    user = make_user(username="ada")
    contact_list = contact_list_create(name="Actors", actor=user)
    event = audit.AuditEvent.objects.get(action="list.create")
    assert (event.actor_id, event.actor_label) == (user.pk, "ada")
    assert contact_list.created_by == user
    assert user_of(user) == user
    assert actor_has_perm(user, "luxmail.view_phi") == user.has_perm("luxmail.view_phi")


@pytest.mark.django_db
def test_api_key_is_recorded_by_its_prefix_and_owns_nothing(make_user):
    issued = api_key_create(name="crm", scopes=["contacts:read"], actor=make_user())
    principal = ApiKeyPrincipal(issued.key)
    contact_list = contact_list_create(name="From the API", actor=principal)
    event = audit.AuditEvent.objects.get(action="list.create")
    assert (event.actor_id, event.actor_label) == (None, f"api-key:{issued.key.prefix}")
    assert contact_list.created_by is None
    assert user_of(principal) is None
    assert actor_has_perm(principal, "luxmail.view_phi") is False


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("actor", "label"),
    [
        (None, "system"),
        ("journey:7", "journey:7"),
        ("bounces:imap", "bounces:imap"),
        ("command:rebuild_rollups", "command:rebuild_rollups"),
    ],
)
def test_system_task_is_recorded_as_system_or_its_label(actor, label):
    contact_list = contact_list_create(name=f"Task {label}", actor=actor)
    event = audit.AuditEvent.objects.get(action="list.create")
    assert (event.actor_id, event.actor_label) == (None, label)
    assert contact_list.created_by is None
    assert user_of(actor) is None
    assert actor_has_perm(actor, "luxmail.view_phi") is False


@pytest.mark.django_db
def test_patient_is_recorded_as_portal_recipient_never_by_name():
    assert PORTAL_RECIPIENT == PATIENT  # the portal's services act as this actor
    event = audit.record("portal.open", actor=PATIENT)
    assert (event.actor_id, event.actor_label) == (None, "portal-recipient")
    assert user_of(PATIENT) is None
    assert actor_has_perm(PATIENT, "luxmail.view_phi") is False


@pytest.mark.django_db
def test_anonymous_visitor_is_recorded_as_anonymous():
    event = audit.record("auth.failed", actor=AnonymousUser())
    assert (event.actor_id, event.actor_label) == (None, "anonymous")
    assert user_of(AnonymousUser()) is None


@pytest.mark.django_db
def test_audit_context_of_a_request_carries_its_user_ip_and_agent(make_user):
    user = make_user(username="grace")
    request = RequestFactory().get("/", HTTP_USER_AGENT="Firefox", REMOTE_ADDR="203.0.113.9")
    request.user = user
    context = AuditContext.of(request)
    assert context == AuditContext(actor=user, request=request)
    event = audit.record("settings.view", context=context)
    assert (event.actor_id, event.actor_label) == (user.pk, "grace")
    assert (event.ip, event.user_agent) == ("203.0.113.9", "Firefox")
