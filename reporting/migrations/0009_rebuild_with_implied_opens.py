"""Recompute the rollups with total opens that include the open a click implies.

No schema change: ``rollups.engagement_select`` now adds, per message, one open at the
message's open label when no open event carries it (a click without a pixel load), so
unique opened never exceeds total opens. Stored engagement columns and every rollup
are rebuilt from raw events once.

Since 0010 this is a no-op: 0010 rebuilds everything again with the live rollup code,
which by then needs 0010's columns (rebuilding here would query columns that do not
exist yet).
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("reporting", "0008_rollup_journal"),
    ]

    operations = [migrations.RunPython(migrations.RunPython.noop, migrations.RunPython.noop)]
