"""Notification read state becomes per person (``NotificationRead``).

Before, one read mark on ``Notification`` was shared by everybody. A notification that
somebody had already read stays read for every staff account that exists at migration
time (it was dealt with; nobody should see old news light up again); unread ones stay
unread for everyone. Going back keeps the earliest read per notification.
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


def shared_reads_to_per_user(apps, schema_editor):
    Notification = apps.get_model("luxmail", "Notification")
    NotificationRead = apps.get_model("luxmail", "NotificationRead")
    User = apps.get_model("luxmail", "User")
    read = list(
        Notification.objects.filter(read_at__isnull=False).values_list("pk", "read_at").iterator()
    )
    if not read:
        return
    for user_id in User.objects.values_list("pk", flat=True).iterator():
        NotificationRead.objects.bulk_create(
            [
                NotificationRead(notification_id=pk, user_id=user_id, read_at=read_at)
                for pk, read_at in read
            ],
            batch_size=1000,
            ignore_conflicts=True,
        )


def per_user_reads_to_shared(apps, schema_editor):
    Notification = apps.get_model("luxmail", "Notification")
    NotificationRead = apps.get_model("luxmail", "NotificationRead")
    for row in NotificationRead.objects.order_by("notification_id", "read_at", "id").iterator():
        Notification.objects.filter(pk=row.notification_id, read_at__isnull=True).update(
            read_at=row.read_at, read_by_id=row.user_id
        )


class Migration(migrations.Migration):
    dependencies = [
        ("luxmail", "0011_org_footer_text"),
    ]

    operations = [
        migrations.CreateModel(
            name="NotificationRead",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("read_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "notification",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="reads",
                        to="luxmail.notification",
                    ),
                ),
                (
                    "user",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("user", "notification"), name="notification_read_once"
                    )
                ],
            },
        ),
        migrations.RunPython(shared_reads_to_per_user, per_user_reads_to_shared),
        migrations.RemoveIndex(model_name="notification", name="notification_unread"),
        migrations.RemoveField(model_name="notification", name="read_at"),
        migrations.RemoveField(model_name="notification", name="read_by"),
    ]
