"""Create the role groups (Admin, Marketer, PHI Marketer, Compliance Officer, Viewer).

Permissions of models that do not exist yet are attached by ``luxmail.roles`` after
each ``migrate`` (post_migrate), using the same patterns.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations


def forwards(apps, schema_editor):
    from luxmail import roles

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    roles.sync_roles(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("luxmail", "0002_audit_append_only"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
