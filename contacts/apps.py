from django.apps import AppConfig


class ContactsConfig(AppConfig):
    name = "contacts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # in ready(): the module imports models, loaded only now
        from contacts import retention

        retention.register()  # finished imports in the retention purge
