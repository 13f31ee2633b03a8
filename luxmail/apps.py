from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class LuxMailConfig(AppConfig):
    name = "luxmail"
    verbose_name = "LuxMail"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from luxmail import lookups, roles, signals  # noqa: F401  (connect receivers)
        from luxmail.accounts.sso import checks  # noqa: F401  (register the system check)

        roles.connect()
        lookups.register()


class LuxMailAdminConfig(admin_apps.AdminConfig):
    """The Django admin, behind a verified second factor (``OTPAdminSite``)."""

    default = False
    default_site = "luxmail.admin_site.LuxMailAdminSite"
