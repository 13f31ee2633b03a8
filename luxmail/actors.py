"""Who does something, as services and the audit log see it (docs/architecture.md, "Actors").

Every service that changes or reads data on someone's behalf takes ``actor: Actor``;
:func:`luxmail.audit.record` turns it into the event's ``actor_id``/``actor_label``:

* a **staff user** (``request.user``): ``actor_id`` = the user's pk, label = username;
  an ``AnonymousUser`` is recorded as ``anonymous``;
* an **API key** (:class:`luxmail.api.authentication.ApiKeyPrincipal`, ``request.user``
  of a Bearer request): no ``actor_id``, label ``api-key:<prefix>``;
* a **system task**: ``None`` (label ``system``) or a label naming the task, such as
  ``journey:<id>``, ``bounces:<source>`` or ``command:<name>``;
* a **patient** in the secure portal: :data:`PATIENT` (label ``portal-recipient``;
  the recipient link is the audit target, the patient is never named).

A label is a plain ``str`` so existing callers keep their exact audit labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias, Union, cast

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser
    from django.contrib.auth.models import AnonymousUser
    from django.http import HttpRequest

    from luxmail.api.authentication import ApiKeyPrincipal
    from luxmail.models import User

#: The audit label of a patient acting in the secure portal.
PATIENT = "portal-recipient"

#: A staff user, an API key, a system task (``None`` or its label) or a patient (:data:`PATIENT`).
Actor: TypeAlias = Union["AbstractBaseUser", "AnonymousUser", "ApiKeyPrincipal", str, None]


def user_of(actor: Actor) -> User | None:
    """The saved staff user behind ``actor`` (for ``created_by``-style fields), else ``None``.

    API keys, anonymous users, task labels, the patient and ``None`` have no pk.
    """
    if actor is None or isinstance(actor, str) or not getattr(actor, "pk", None):
        return None
    return cast("User", actor)


def actor_has_perm(actor: Actor, perm: str) -> bool:
    """``actor.has_perm(perm)`` for users and API keys; ``False`` for labels and ``None``."""
    has_perm = getattr(actor, "has_perm", None)
    return bool(has_perm(perm)) if has_perm is not None else False


@dataclass(frozen=True)
class AuditContext:
    """What :func:`luxmail.audit.record` needs to say who acted and from where.

    ``actor`` as above; ``request`` gives the client IP and user agent (and the
    acting user when ``actor`` is ``None``). Both optional: a system task has neither.
    """

    actor: Actor = None
    request: HttpRequest | None = None

    @classmethod
    def of(cls, request: HttpRequest) -> AuditContext:
        """The context of a view: its signed-in user (or anonymous) and its request."""
        return cls(actor=getattr(request, "user", None), request=request)
