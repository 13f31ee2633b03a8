from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Models are loaded only now: the channel module imports them.
        from campaigns.sending import hooks
        from portal import channel

        hooks.register_portal(channel)  # the portal plugs into sending (campaigns.sending.hooks)

        from portal import retention  # in ready(): imports models, loaded only now

        retention.register()  # portal messages in the retention purge
