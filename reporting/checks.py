"""System checks of the reporting app (``manage.py check``, ``check --deploy``)."""

from __future__ import annotations

from typing import Any

from django.core import checks

from luxmail import conf
from reporting import buffer


def tracking_durability(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """An accepted tracking hit must survive a crash of the store that took it.

    An Error in production (``check --deploy`` fails; ``luxmail.wsgi`` refuses to start
    through :func:`reporting.buffer.enforce_durability`), a Warning elsewhere.
    """

    problem = buffer.durability_problem()
    if problem is None or not problem.blocking:
        # Redis not answering now is an outage, not a configuration error (hits go to
        # PostgreSQL): the health check reports it, the web start-up logs it.
        return []
    if problem.blocking and conf.production():
        return [checks.Error(problem.message, id="reporting.E001")]
    return [checks.Warning(problem.message, id="reporting.W001")]
