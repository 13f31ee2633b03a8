"""Recompute the rollups with total opens that include the open a click implies.

No schema change: ``rollups.engagement_select`` now adds, per message, one open at the
message's open label when no open event carries it (a click without a pixel load), so
unique opened never exceeds total opens. Stored engagement columns and every rollup
are rebuilt from raw events once.
"""

from django.db import migrations


def _rebuild(apps, schema_editor):
    from reporting import rollups

    rollups.rebuild()


class Migration(migrations.Migration):
    dependencies = [
        ("reporting", "0008_rollup_journal"),
    ]

    operations = [migrations.RunPython(_rebuild, migrations.RunPython.noop)]
