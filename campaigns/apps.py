from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # in ready(): the module imports models, loaded only now
        from campaigns import retention

        retention.register()  # messages and bounces in the retention purge
