"""Writes of the contacts app: contacts, consent, suppression, lists, segments, custom fields.

One module per entity or use case.

Every service owns its transaction, audits what it did (ids and counts only, never
PHI) and raises a :class:`ContactsError` subclass with a friendly message for
anything a user can cause. Contact writes go through ``contacts/upsert.py`` so that
encryption and tokens are produced the same way everywhere, and the tokens of a contact
are rewritten in the same transaction as its profile.

Re-exported here by name because many callers (views, API, tasks, tests) use
``contacts.services.<name>``; new code may import from the submodule.
"""

from contacts.services.consent import (
    consent_grant,
    consent_grant_many,
    consent_revoke,
    consent_revoke_many,
)
from contacts.services.contacts import (
    BulkUpsertResult,
    contact_create,
    contact_delete,
    contact_set_status,
    contact_update,
    contact_upsert,
    contacts_bulk_upsert,
)
from contacts.services.custom_fields import (
    custom_field_create,
    custom_field_delete,
    custom_field_update,
)
from contacts.services.errors import (
    MAX_BATCH,
    ConsentError,
    ContactExists,
    ContactHeld,
    ContactInvalid,
    ContactsError,
    CustomFieldError,
    ListError,
    SuppressionError,
)
from contacts.services.lists import (
    contact_list_create,
    contact_list_delete,
    contact_list_update,
    list_members_add,
    list_members_remove,
)
from contacts.services.segments import (
    segment_count,
    segment_count_rules,
    segment_create,
    segment_delete,
    segment_update,
)
from contacts.services.suppression import (
    suppression_add,
    suppression_remove,
)

__all__ = [
    "MAX_BATCH",
    "BulkUpsertResult",
    "ConsentError",
    "ContactExists",
    "ContactHeld",
    "ContactInvalid",
    "ContactsError",
    "CustomFieldError",
    "ListError",
    "SuppressionError",
    "consent_grant",
    "consent_grant_many",
    "consent_revoke",
    "consent_revoke_many",
    "contact_create",
    "contact_delete",
    "contact_list_create",
    "contact_list_delete",
    "contact_list_update",
    "contact_set_status",
    "contact_update",
    "contact_upsert",
    "contacts_bulk_upsert",
    "custom_field_create",
    "custom_field_delete",
    "custom_field_update",
    "list_members_add",
    "list_members_remove",
    "segment_count",
    "segment_count_rules",
    "segment_create",
    "segment_delete",
    "segment_update",
    "suppression_add",
    "suppression_remove",
]
