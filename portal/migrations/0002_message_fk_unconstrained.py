"""Portal messages point at campaign messages without a database foreign key: messages
are partitioned on PostgreSQL (campaigns 0009, which runs after this)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0008_campaign_approval"),
        ("portal", "0001_initial"),
    ]

    run_before = [("campaigns", "0009_message_partitioned")]

    operations = [
        migrations.AlterField(
            model_name="portalmessage",
            name="message",
            field=models.OneToOneField(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="portal_message",
                to="campaigns.message",
            ),
        ),
    ]
