"""Start a Celery task by its registered name, so services need not import ``tasks``.

Tasks are thin shells that call services (``tasks → services``); services start tasks
after their transaction commits. If a service imported its app's ``tasks`` module, the
two would import each other (a cycle the ``acyclic_siblings`` contract forbids). So each
app names the tasks its services start as :class:`Job` values in its ``jobs.py``; the
task decorator uses the same name (``@shared_task(name=jobs.SEND_BATCH.name)``) and
``tests/test_architecture.py`` checks every job names a registered task.

Arguments are ids only (DESIGN.md §4: never PHI in task arguments).
"""

from __future__ import annotations

from dataclasses import dataclass

from celery import Task

from luxmail.celery import app

JobArg = int | str | None


@dataclass(frozen=True)
class Job:
    """A Celery task known by name; ``delay``/``apply_async`` as on the task itself."""

    name: str

    def task(self) -> Task:
        if self.name not in app.tasks:
            # A web process has not imported the apps' tasks modules: register them.
            app.loader.import_default_modules()
        try:
            return app.tasks[self.name]
        except KeyError:
            raise LookupError(f"no Celery task is registered as {self.name!r}") from None

    def delay(self, *args: JobArg) -> None:
        self.task().delay(*args)

    def apply_async(self, args: tuple[JobArg, ...] = (), *, countdown: float | None = None) -> None:
        if countdown is None:
            self.task().apply_async(args)
        else:
            self.task().apply_async(args, countdown=countdown)


# The platform's own jobs (luxmail/tasks.py).
HEALTHCHECK = Job("luxmail.healthcheck")
NOTIFICATION_EMAIL = Job("luxmail.notification_email")
