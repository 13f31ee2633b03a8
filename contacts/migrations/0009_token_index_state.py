# Token layout 2 adds decade and century date tokens (issue 16 §3: a broad age range
# becomes ~30 tokens instead of ~95). Existing contacts keep layout 1 until
# `manage.py contacts_reindex` has rewritten them; segments fall back to year/month/day
# covers (exact on both layouts) until then.

from django.db import migrations, models

LAYOUT_BEFORE = 1
LAYOUT_NOW = 2


def record_layout(apps, schema_editor):
    contact = apps.get_model("contacts", "Contact")
    state = apps.get_model("contacts", "TokenIndexState")
    version = LAYOUT_BEFORE if contact.objects.exists() else LAYOUT_NOW
    state.objects.update_or_create(pk=1, defaults={"version": version})


class Migration(migrations.Migration):
    dependencies = [
        ("contacts", "0008_bulk_export"),
    ]

    operations = [
        migrations.CreateModel(
            name="TokenIndexState",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("version", models.PositiveSmallIntegerField()),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
            options={
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("pk", 1)), name="tokenindexstate_singleton"
                    )
                ],
            },
        ),
        migrations.RunPython(record_layout, migrations.RunPython.noop),
    ]
