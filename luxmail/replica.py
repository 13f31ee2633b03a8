"""Report reads on the streaming read replica, everything else on the primary.

Report selectors are wrapped in :func:`reads` (a decorator and a context manager). While
one runs, :class:`ReplicaRouter` sends ORM reads to the alias :func:`luxmail.conf.replica_alias`
names (``replica`` when ``LUXMAIL_REPLICA_DATABASE_URL`` is set), and to ``default`` when
it names none. Writes always go to ``default``; so do reads inside an open transaction on
``default`` (a report taken mid-write must see that write, which the replica has not yet
replayed). A replica lags the primary by its replay delay (usually well under a second):
reports tolerate that, the send path and the importer never read through it.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

from django.db import connections, models

from luxmail import conf

P = ParamSpec("P")
R = TypeVar("R")

_REPORT_READS: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "luxmail_report_reads", default=False
)


@contextmanager
def _scope() -> Iterator[None]:
    token = _REPORT_READS.set(True)
    try:
        yield
    finally:
        _REPORT_READS.reset(token)


def reads(function: Callable[P, R]) -> Callable[P, R]:
    """Decorate a report selector: its ORM reads may go to the replica."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with _scope():
            return function(*args, **kwargs)

    return wrapper


def alias_for_reads() -> str:
    """The alias a report read uses now (``default`` inside a write transaction)."""
    alias = conf.replica_alias()
    if alias is None or not _REPORT_READS.get() or connections["default"].in_atomic_block:
        return "default"
    return alias


class ReplicaRouter:
    """Django database router: see the module docstring."""

    def db_for_read(self, model: type[models.Model], **hints: Any) -> str:
        return alias_for_reads()

    def db_for_write(self, model: type[models.Model], **hints: Any) -> str:
        return "default"

    def allow_relation(self, obj1: models.Model, obj2: models.Model, **hints: Any) -> bool:
        return True

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        # The replica replays the primary's WAL: migrations run on the primary only.
        return db == "default"
