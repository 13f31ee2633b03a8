"""Core Celery tasks: the health probe and the beat heartbeat (``luxmail.health``).

Tasks are thin shells (docs/architecture.md, rule 1): ids in, never PHI.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task
from celery.signals import beat_init

from luxmail import audit, breakglass, health, jobs, notifications, partitions, retention


@shared_task(name=jobs.HEALTHCHECK.name, ignore_result=True)
def healthcheck(probe_id: str) -> None:
    """Answer a deep health probe: proves broker → worker → cache works."""
    health.probe_answer(probe_id=probe_id)


@shared_task(name="luxmail.heartbeat", ignore_result=True)
def heartbeat() -> None:
    """Sent by Celery beat; the worker records when it ran (beat and worker alive)."""
    health.heartbeat_record()


@beat_init.connect(dispatch_uid="luxmail.heartbeat_on_beat_start")
def _heartbeat_on_start(sender: Any = None, **kwargs: Any) -> None:
    # The schedule's first beat comes one interval after start; this one proves the
    # freshly started beat reaches the broker right away.
    heartbeat.delay()


@shared_task(name="luxmail.audit_checkpoint", ignore_result=True)
def audit_checkpoint() -> None:
    """Sent by Celery beat: anchor the audit chain's ends in a signed checkpoint."""

    result = audit.checkpoint_write(reason="periodic")
    if not result.ok:
        # Ids, counts and times only (no PHI); the failure is for the operators' alerts.
        raise audit.AuditChainError(result.message)


@shared_task(name="luxmail.retention_purge", ignore_result=True)
def retention_purge() -> None:
    """Sent by Celery beat: apply the retention settings (``luxmail/retention.py``)."""
    retention.retention_run()


@shared_task(name="luxmail.partitions_ensure", ignore_result=True)
def partitions_ensure() -> None:
    """Sent by Celery beat: create next months' partitions (``luxmail/partitions.py``)."""
    partitions.partitions_ensure()


@shared_task(name="luxmail.break_glass_expire", ignore_result=True)
def break_glass_expire() -> None:
    """Sent by Celery beat: audit break-glass grants that ran out (``luxmail/breakglass.py``)."""
    breakglass.break_glass_expire()


@shared_task(
    name=jobs.NOTIFICATION_EMAIL.name,
    autoretry_for=(OSError,),
    retry_backoff=True,
    max_retries=5,
    ignore_result=True,
)
def notification_email(notification_id: int) -> None:
    """E-mail one notification to those who asked for its kind (id in, no PHI)."""
    notifications.notification_email_send(notification_id=notification_id)


@shared_task(name="luxmail.key_rotation_check", ignore_result=True)
def key_rotation_check() -> None:
    """Sent by Celery beat daily: notify Admins when a key rotation is due."""
    notifications.key_rotation_check()
