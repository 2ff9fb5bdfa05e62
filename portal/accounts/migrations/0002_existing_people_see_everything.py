"""Reach arrives: people who existed before it keep seeing everything, so nothing breaks on upgrade.

Each active person (superusers see everything anyway) is given `accounts.every_organisation`
directly; an admin narrows them to memberships afterwards. People added later start with no reach.
Reversing removes the permission from everyone it was given to directly.
"""

from django.db import migrations


def _permission(apps):
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    content_type, _ = ContentType.objects.get_or_create(app_label="accounts", model="membership")
    permission, _ = Permission.objects.get_or_create(
        codename="every_organisation",
        content_type=content_type,
        defaults={"name": "Can see every organisation and mailbox"},
    )
    return permission


def grant(apps, schema_editor):
    User = apps.get_model("auth", "User")
    people = User.objects.filter(is_active=True, is_superuser=False)
    if people.exists():
        _permission(apps).user_set.add(*people)


def revoke(apps, schema_editor):
    _permission(apps).user_set.clear()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_membership"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
