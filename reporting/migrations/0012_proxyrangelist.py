from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("reporting", "0011_retention_keeps_report_rows")]

    operations = [
        migrations.CreateModel(
            name="ProxyRangeList",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("source", models.SlugField(max_length=64, unique=True)),
                (
                    "refreshed_at",
                    models.DateTimeField(help_text="When the list was last loaded."),
                ),
                (
                    "location",
                    models.CharField(
                        blank=True,
                        help_text="URL or file the list was loaded from.",
                        max_length=500,
                    ),
                ),
                (
                    "published",
                    models.CharField(
                        blank=True,
                        help_text="The date the list itself carries (e.g. the seed snapshot's), "
                        "if any.",
                        max_length=40,
                    ),
                ),
                ("ranges", models.PositiveIntegerField(default=0)),
            ],
            options={"ordering": ["source"]},
        ),
    ]
