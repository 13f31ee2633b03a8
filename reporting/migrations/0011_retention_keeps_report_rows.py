"""Retention purges keep report rows: the message delete trigger skips them.

No schema change: ``reporting_message_del`` now returns early when the transaction
is a retention purge (``luxmail.retention_purge`` set by ``luxmail/retention.py``).
"""

from django.db import migrations


def _install(apps, schema_editor):
    from reporting import rollups  # the trigger SQL lives with the rollup formulas

    rollups.install_triggers()


class Migration(migrations.Migration):
    dependencies = [
        ("reporting", "0010_privacy_proxy_and_automation_kinds"),
    ]

    operations = [migrations.RunPython(_install, migrations.RunPython.noop)]
