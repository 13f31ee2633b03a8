from django.apps import AppConfig


class ReportingConfig(AppConfig):
    name = "reporting"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from reporting import segments, signals  # noqa: F401  (connect receivers)

        segments.register()  # engagement conditions in contacts' segment registry
