from django.apps import AppConfig


class ReportingConfig(AppConfig):
    name = "reporting"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from reporting import segments, signals  # noqa: F401  (connect receivers)

        segments.register()  # engagement conditions in contacts' segment registry

        from django.core import checks

        from reporting.checks import tracking_durability

        # Asks Redis for its configuration: only ``check --deploy`` and the web start-up
        # (luxmail/wsgi.py), not every management command.
        checks.register(tracking_durability, "luxmail", deploy=True)
