from django.apps import AppConfig
from django.conf import settings


class ContactsConfig(AppConfig):
    name = "contacts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # in ready(): the module imports models, loaded only now
        from contacts import icd10, retention

        retention.register()  # finished imports in the retention purge
        if not settings.TESTING:
            icd10.warm_in_background()  # once per install: the picker's compact code index
