"""Messages partitioned by month on PostgreSQL (luxmail/partitions.py).

No foreign key may point into a partitioned table, so the ones to messages become
``db_constraint=False`` first (here, and in portal 0002 and reporting 0013, which run
before this); then ``campaigns_message`` is rebuilt partitioned by ``queued_at`` with
its rows. SQLite keeps a plain table. Reversible.
"""

import django.db.models.deletion
from django.db import migrations, models

from luxmail import partitions

MESSAGES = partitions.PartitionedTable("campaigns_message", "queued_at")


def forwards(apps, schema_editor):
    partitions.table_partition(schema_editor.connection, MESSAGES)


def backwards(apps, schema_editor):
    partitions.table_unpartition(schema_editor.connection, MESSAGES)


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0008_campaign_approval"),
    ]

    operations = [
        migrations.AlterField(
            model_name="bounceevent",
            name="message",
            field=models.ForeignKey(
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="bounces",
                to="campaigns.message",
            ),
        ),
        migrations.AlterField(
            model_name="deliveryproof",
            name="message",
            field=models.OneToOneField(
                db_constraint=False,
                on_delete=django.db.models.deletion.CASCADE,
                primary_key=True,
                related_name="delivery_proof",
                serialize=False,
                to="campaigns.message",
            ),
        ),
        migrations.AlterField(
            model_name="journeysteprun",
            name="message",
            field=models.OneToOneField(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="journey_run",
                to="campaigns.message",
            ),
        ),
        migrations.RunPython(forwards, backwards, elidable=False),
    ]
