"""A model used only by the test suite to exercise encrypted fields and key rotation."""

import uuid

from django.db import models

from luxmail.crypto import EncryptedField


class Vault(models.Model):
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    note = EncryptedField(kind="text")
    data = EncryptedField(kind="json")
    born = EncryptedField(kind="date")
    secret = EncryptedField(kind="text", phi=False)
