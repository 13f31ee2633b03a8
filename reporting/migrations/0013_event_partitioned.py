"""Tracking events partitioned by month on PostgreSQL (luxmail/partitions.py).

``reporting_event`` is rebuilt partitioned by ``occurred_at`` with its rows; its
``source_id`` uniqueness becomes (source_id, occurred_at) in the database, which keeps
ingestion idempotent since one buffer entry always has one time. The event's link to
its message loses its database foreign key first (messages are partitioned by
campaigns 0009, which runs after this). SQLite keeps plain tables. Reversible.
"""

import django.db.models.deletion
from django.db import migrations, models

from luxmail import partitions

EVENTS = partitions.PartitionedTable("reporting_event", "occurred_at")


def forwards(apps, schema_editor):
    partitions.table_partition(schema_editor.connection, EVENTS)


def backwards(apps, schema_editor):
    partitions.table_unpartition(schema_editor.connection, EVENTS)


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0008_campaign_approval"),
        ("reporting", "0012_proxyrangelist"),
    ]

    run_before = [("campaigns", "0009_message_partitioned")]

    operations = [
        migrations.AlterField(
            model_name="event",
            name="message",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="engagement_events",
                to="campaigns.message",
            ),
        ),
        migrations.RunPython(forwards, backwards, elidable=False),
    ]
