"""Let the claim's lease write be a HOT update.

A claim sets ``claim_token`` and ``lease_until`` on a batch of rows; ``lease_until`` was
the key of the partial index ``message_in_flight``, so every claimed row got a new entry
in each of the message table's five indexes (and so did every lease renewal). Keyed on
``campaign_id`` (same condition, ``state = 'sending'``) no lease write changes an indexed
column; then the update is HOT whenever the row's page has room, which bulk-queued
pages never had: the partitions get a fillfactor (PostgreSQL takes it per leaf
partition; new months get it from ``luxmail/partitions.py``). Reversible; SQLite only
gets the index.
"""

from django.db import migrations, models

from luxmail import partitions

FILLFACTOR = 80


def forwards(apps, schema_editor):
    partitions.table_set_storage(
        schema_editor.connection,
        partitions.PartitionedTable("campaigns_message", "queued_at", FILLFACTOR),
    )


def backwards(apps, schema_editor):
    partitions.table_set_storage(
        schema_editor.connection, partitions.PartitionedTable("campaigns_message", "queued_at", 100)
    )


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0013_message_no_duplicate_fk_indexes"),
        ("contacts", "0009_token_index_state"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="message",
            name="message_in_flight",
        ),
        migrations.AddIndex(
            model_name="message",
            index=models.Index(
                condition=models.Q(("state", "sending")),
                fields=["campaign"],
                name="message_in_flight",
            ),
        ),
        migrations.RunPython(forwards, backwards, elidable=False),
    ]
