"""The message update trigger finds changed rows with a set difference, not a join.

No schema change: ``reporting_message_upd`` is replaced (``rollups.install_triggers``).
Claims and lease renewals, which change no reported state, return at its first test.
"""

from django.db import migrations


def _install(apps, schema_editor):
    from reporting import rollups  # the trigger SQL lives with the rollup formulas

    rollups.install_triggers()


class Migration(migrations.Migration):
    dependencies = [
        ("reporting", "0014_report_schedule"),
    ]

    operations = [migrations.RunPython(_install, migrations.RunPython.noop)]
