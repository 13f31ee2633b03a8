from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Function-level import: services import models, which are not loaded before ready().
        from campaigns.services import approvals

        approvals.connect()
