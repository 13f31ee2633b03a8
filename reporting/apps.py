from django.apps import AppConfig

from luxmail import partitions


class ReportingConfig(AppConfig):
    name = "reporting"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Models are loaded only now: these modules import them.
        from campaigns.sending import hooks
        from reporting import feedback_hook, segments, signals, tracking  # noqa: F401  (signals: receivers)

        hooks.register_tracker(tracking)  # link and open tracking plug into sending
        hooks.register_feedback_listener(feedback_hook.LISTENER)  # auto-pause webhook

        # in ready(): these modules import models, loaded only now
        from luxmail import startup
        from reporting.buffer import enforce_durability

        startup.register_web_check(enforce_durability)  # run by luxmail/wsgi.py

        segments.register()  # engagement conditions in contacts' segment registry
        partitions.register(partitions.PartitionedTable("reporting_event", "occurred_at"))

        from reporting import retention  # in ready(): imports models, loaded only now

        retention.register()  # tracking events in the retention purge

        # in ready(): these modules import models, loaded only now
        from django.core import checks

        from reporting.checks import tracking_durability

        # Asks Redis for its configuration: only ``check --deploy`` and the web start-up
        # (luxmail/wsgi.py), not every management command.
        checks.register(tracking_durability, "luxmail", deploy=True)
