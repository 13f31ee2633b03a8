"""The message update trigger computes the changed rows once per statement.

No schema change: ``reporting_message_upd`` is replaced (``rollups.install_triggers``);
it computed the same set difference three times (test, lock, update) for every chunk a
send worker wrote. ``reporting_messagestat`` gets a fillfactor (PostgreSQL), so a sent
message's state change is a HOT update: ``state`` and ``channel`` are in no index of
that table, and its rows are inserted in bulk, filling every page.
"""

from django.db import migrations

FILLFACTOR = 80


def _install(apps, schema_editor):
    from reporting import rollups  # the trigger SQL lives with the rollup formulas

    rollups.install_triggers()


def _fillfactor(value: int):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            with schema_editor.connection.cursor() as cursor:
                cursor.execute(f"ALTER TABLE reporting_messagestat SET (fillfactor = {value})")

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("reporting", "0015_message_trigger_set_difference"),
    ]

    operations = [
        migrations.RunPython(_install, migrations.RunPython.noop),
        migrations.RunPython(_fillfactor(FILLFACTOR), _fillfactor(100), elidable=False),
    ]
