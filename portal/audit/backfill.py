"""Filling an unsealed, derived column of the records sealed before it existed (migrations)."""

from __future__ import annotations

from django.db import migrations


def record_mailboxes_filled(*fills: tuple[str, str]) -> migrations.RunPython:
    """The migration operation running `fill_record_mailboxes` for each (object type, SELECT)."""

    def fill(apps, schema_editor):
        for object_type, mailbox_of in fills:
            fill_record_mailboxes(schema_editor, object_type, mailbox_of)

    return migrations.RunPython(fill, migrations.RunPython.noop, elidable=True)


def fill_record_mailboxes(schema_editor, object_type: str, mailbox_of: str) -> None:
    """Set `mailbox_pk` on the records about `object_type` that have none, in one UPDATE.

    `mailbox_of` is a SELECT of one row's mailbox pk given the record's object id as `{id}`
    ("SELECT mailbox_id FROM messaging_message WHERE id = {id}"). A record whose object is gone
    keeps none (the trail shows it only to those who see everything, as before).
    """
    connection = schema_editor.connection
    table = connection.ops.quote_name("audit_auditrecord")
    object_id = f"CAST({table}.object_id AS BIGINT)"
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET mailbox_pk = ({mailbox_of.format(id=object_id)}) "
            "WHERE object_type = %s AND mailbox_pk IS NULL",
            [object_type],
        )
