"""Migration 0012 gives the word entries of messages stored before it their message's created_at.

Run in a child process on a fresh SQLite database, migrations and all (the suite's own test
database is made from the models): migrate, store messages, go back to before 0012 (its column
dropped), and forward again.
"""

from __future__ import annotations

import json

from tests.security.test_production import production_env, run

SCRIPT = """
import json, django
from datetime import timedelta
django.setup()
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
call_command("migrate", verbosity=0)
from portal.messaging.models import Message, MessageWord
from tests.accounts.access import make_message
from tests.factories import make_mailbox
mailbox = make_mailbox("X26ABC1")
start = timezone.now() - timedelta(days=30)
made = [
    make_message(mailbox, payload=None, subject=f"Batch {n}", created_at=start + timedelta(hours=n))
    for n in range(3)
]
call_command("migrate", "messaging", "0011", verbosity=0)
with connection.cursor() as cursor:
    columns = [c.name for c in connection.introspection.get_table_description(
        cursor, "messaging_messageword")]
call_command("migrate", verbosity=0)
print(json.dumps({
    "before": columns,
    "expected": {str(m.pk): m.created_at.isoformat() for m in made},
    "entries": [
        [str(pk), at.isoformat() if at else None]
        for pk, at in MessageWord.objects.values_list("message_id", "created_at")
    ],
    "indexes": list(connection.introspection.get_constraints(
        connection.cursor(), "messaging_messageword")),
}))
"""


def test_it_fills_the_created_at_of_entries_stored_before_it(tmp_path):
    env = production_env(tmp_path) | {"NEOMESH_PRODUCTION": "false"}
    result = run(["-c", SCRIPT], env)
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert "created_at" not in seen["before"]  # it was gone: 0012 filled it again
    assert len(seen["entries"]) == 3 * 4  # "batch", the number, "report", "csv"
    assert all(at == seen["expected"][pk] for pk, at in seen["entries"]), seen
    assert "msgword_word_created" in seen["indexes"]
