"""Rows for the portal-at-scale benchmark, generated inside the database by one INSERT ... SELECT.

Ten million messages and twenty million audit records cannot be made row by row in Python in a
sensible time on a shared 2-core machine (~30 MB a minute); the database makes them from a number
series at C speed. Every value derives from the row number ``i`` through a multiplicative hash,
so SQLite and PostgreSQL hold the same data, and a reseed gives the same data again.

The shapes (what the pages filter on): messages over 90 days, ids in time order; ten mailboxes, the
tenth alone in its environment with one message in 5,000; half inbound; statuses by age (recent
inbound partly not yet acknowledged, recent outbound partly queued; 2% failed, 0.5% uncertain);
workflows weighted (one rare); 300 partners; 0.3% reports. Audit records follow their messages
through time, 13 actions weighted (logins, failed logins and mailbox changes rare).
"""

from __future__ import annotations

from datetime import datetime

# Nine busy mailboxes; the tenth, alone in its environment, gets one message in 5,000 (the worst
# case for an environment filter: a few matches among millions of rows).
ENVIRONMENTS = [
    "live",
    "live",
    "live",
    "integration",
    "integration",
    "integration",
    "sandbox",
    "sandbox",
    "sandbox",
    "deployment",
]
QUIET_EVERY = 5000
WORKFLOWS = [
    ("PATH_RESULTS", 30),
    ("GP_REFERRAL", 20),
    ("SCREENING_EXTRACT", 15),
    ("DISCHARGE_SUMMARY", 12),
    ("IMMS_UPDATE", 8),
    ("CANCER_WAITS", 6),
    ("MAT_DATA", 4),
    ("DENTAL_CLAIMS", 3),
    ("SPINE_NOTIFY", 1),
    ("RARE_WORKFLOW", 1),
]
AUDIT_ACTIONS = [
    ("message.downloaded", 22),
    ("message.acknowledged", 22),
    ("message.accepted", 18),
    ("message.queued", 16),
    ("message.tracked", 10),
    ("auth.login", 3),
    ("auth.logout", 2),
    ("message.payload_downloaded", 2),
    ("auth.login_failed", 1),
    ("mailbox.poll_requested", 1),
    ("mailbox.update", 1),
    ("message.failed", 1),
    ("certificate.csr_downloaded", 1),
]
PEOPLE = [f"person{n:02d}" for n in range(20)]
SPAN_SECONDS = 90 * 24 * 3600
PRIME = 4294967291  # the hash: x = i * 2654435761 mod PRIME, its digits the row's dice


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _bucket(expr: str, items: list[tuple[str, int]], values: list[str]) -> str:
    """CASE on `expr` in 0..99 choosing values[k] with items[k]'s weight (weights sum to 100)."""
    parts, edge = [], 0
    for (_, weight), value in zip(items, values, strict=True):
        edge += weight
        parts.append(f"WHEN {expr} < {edge} THEN {value}")
    return "CASE " + " ".join(parts[:-1]) + f" ELSE {values[-1]} END"


class Dialect:
    """The few expressions that differ between SQLite and PostgreSQL."""

    def __init__(self, engine: str):
        self.engine = engine

    def series(self, count: int) -> str:
        if self.engine == "postgres":
            return f"(SELECT i::bigint AS i FROM generate_series(1, {count}) AS i)"
        return (
            f"(WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {count}) "
            "SELECT i FROM s)"
        )

    def pad(self, expr: str, width: int) -> str:
        if self.engine == "postgres":
            return f"lpad(({expr})::text, {width}, '0')"
        return f"printf('%0{width}d', {expr})"

    def text(self, expr: str) -> str:
        return f"({expr})::text" if self.engine == "postgres" else f"CAST({expr} AS TEXT)"

    def moment(self, epoch: str) -> str:
        """A stored datetime from seconds since 1970 (a float expression)."""
        if self.engine == "postgres":
            return f"to_timestamp({epoch})"
        # Django's SQLite format: naive UTC with microseconds.
        return (
            f"strftime('%Y-%m-%d %H:%M:%S', {epoch}, 'unixepoch') || '.' || "
            f"printf('%06d', CAST(({epoch}) * 1000000 AS INTEGER) % 1000000)"
        )

    def stamp(self, epoch: str, with_time: bool) -> str:
        """YYYYMMDD, or YYYYMMDDHHMMSS with `with_time`, from seconds since 1970."""
        if self.engine == "postgres":
            form = "YYYYMMDDHH24MISS" if with_time else "YYYYMMDD"
            return f"to_char(to_timestamp({epoch}) AT TIME ZONE 'UTC', '{form}')"
        form = "%Y%m%d%H%M%S" if with_time else "%Y%m%d"
        return f"strftime('{form}', {epoch}, 'unixepoch')"

    def cast(self, expr: str, pg_type: str) -> str:
        """PostgreSQL takes text into inet or jsonb columns only when told; SQLite stores text."""
        return f"({expr})::{pg_type}" if self.engine == "postgres" else expr

    def div(self, a: str, b: str) -> str:
        """Integer division of two integer expressions."""
        return f"(({a}) / ({b}))"


def _mailbox_of(i: str, mailbox_pks: list[int]) -> str:
    """The mailbox pk of the `i`th message: one quiet mailbox, the rest shared in turn."""
    busy = mailbox_pks[:-1]
    return (
        f"CASE WHEN {i} % {QUIET_EVERY} = 0 THEN {mailbox_pks[-1]} ELSE "
        + "CASE "
        + " ".join(f"WHEN {i} % {len(busy)} = {k} THEN {pk}" for k, pk in enumerate(busy))
        + " END END"
    )


def message_select(d: Dialect, count: int, mailbox_pks: list[int], now: datetime) -> dict[str, str]:
    """Column -> SQL expression over `h` (i, x, created) for the messages."""
    start = now.timestamp() - SPAN_SECONDS
    recent = f"(h.i > {count} - {count} / 90)"  # the last day of 90
    inbound = "(h.x % 1000 < 500)"
    roll = "((h.x / 1000) % 1000)"  # 0..999, per mille
    wf = "((h.x / 1000000) % 100)"
    workflow = _bucket(wf, WORKFLOWS, [_quote(name) for name, _ in WORKFLOWS])
    titles = [_quote(name.replace("_", " ").title()) for name, _ in WORKFLOWS]
    lower = [_quote(name.lower()) for name, _ in WORKFLOWS]
    busy = mailbox_pks[:-1]
    mailbox = _mailbox_of("h.i", mailbox_pks)
    mailbox_id = (
        f"CASE WHEN h.i % {QUIET_EVERY} = 0 THEN 'B99MBX{len(mailbox_pks) - 1}' ELSE "
        f"'B99MBX' || {d.text(f'h.i % {len(busy)}')} END"
    )
    n = "((h.i * 7919) % 300)"
    partner = (
        f"'X' || CASE WHEN {n} < 10 THEN '0' ELSE '' END || {d.text(n)} || 'PARTNER' || "
        f"{d.text(f'{n} % 7')}"
    )
    status = (
        f"CASE WHEN {inbound} THEN CASE WHEN {recent} AND {roll} < 300 THEN 'received' "
        "ELSE 'acknowledged' END "
        f"WHEN {recent} AND {roll} < 50 THEN 'queued' WHEN {roll} < 20 THEN 'failed' "
        f"WHEN {roll} < 25 THEN 'uncertain' WHEN {roll} < 120 THEN 'accepted' "
        "ELSE 'acknowledged' END"
    )
    queued = f"(NOT {inbound} AND {recent} AND {roll} < 50)"
    acknowledged = f"(({status}) = 'acknowledged')"
    failed = f"(NOT {inbound} AND NOT {recent} AND {roll} < 20)"
    created = "h.created"
    moment = d.moment(created)
    return {
        "mailbox_id": mailbox,
        "direction": f"CASE WHEN {inbound} THEN 'in' ELSE 'out' END",
        "message_type": f"CASE WHEN {roll} > 997 THEN 'REPORT' ELSE 'DATA' END",
        "mesh_message_id": f"CASE WHEN {queued} THEN NULL ELSE "
        f"{d.stamp(created, True)} || {d.pad('h.i % 1000', 3)} || '_' || {d.pad('h.i', 10)} END",
        "local_id": f"CASE WHEN NOT {inbound} OR {roll} < 400 THEN 'LOC-' || {d.pad('h.i', 8)} "
        "ELSE '' END",
        "workflow_id": workflow,
        "sender": f"CASE WHEN {inbound} THEN {partner} ELSE {mailbox_id} END",
        "recipient": f"CASE WHEN {inbound} THEN {mailbox_id} ELSE {partner} END",
        "subject": f"CASE WHEN {roll} < 600 THEN {_bucket(wf, WORKFLOWS, titles)} || ' batch ' || "
        f"{d.text('h.i % 997')} ELSE '' END",
        "filename": f"{_bucket(wf, WORKFLOWS, lower)} || '-' || {d.stamp(created, False)} || '-' || "
        f"{d.pad('h.i', 7)} || '.csv'",
        "content_type": "'text/csv'",
        "size_bytes": "200 + h.x % 4999801",
        "chunks_total": "1",
        "chunks_done": f"CASE WHEN {queued} THEN 0 ELSE 1 END",
        "status": status,
        "mesh_status_code": f"CASE WHEN {failed} THEN '12' ELSE '' END",
        "failure_reason": f"CASE WHEN {failed} THEN 'MESH code 12: recipient not registered' "
        "ELSE '' END",
        "created_at": moment,
        "updated_at": moment,
        "received_at": f"CASE WHEN {inbound} THEN {moment} ELSE NULL END",
        "accepted_at": f"CASE WHEN {inbound} OR {queued} THEN NULL ELSE {moment} END",
        "acknowledged_at": f"CASE WHEN {acknowledged} THEN {d.moment(f'{created} + 300')} "
        "ELSE NULL END",
    } | {
        "__from__": f"(SELECT s.i AS i, (s.i * 2654435761) % {PRIME} AS x, "
        f"{start} + s.i * {SPAN_SECONDS}.0 / {count} AS created "
        f"FROM {d.series(count)} AS s) AS h"
    }


def audit_select(
    d: Dialect, count: int, messages: int, mailbox_pks: list[int], now: datetime, base: int
) -> dict[str, str]:
    start = now.timestamp() - SPAN_SECONDS
    bucket = "((h.x / 1000) % 100)"
    action = _bucket(bucket, AUDIT_ACTIONS, [_quote(name) for name, _ in AUDIT_ACTIONS])
    is_auth = f"(({action}) LIKE 'auth.%')"
    is_mailbox = f"(({action}) LIKE 'mailbox.%' OR ({action}) LIKE 'certificate.%')"
    person_message = f"(({action}) IN ('message.queued', 'message.payload_downloaded'))"
    person = f"({is_auth} OR {is_mailbox} OR {person_message})"
    people = f"'person' || {d.pad('h.i % 20', 2)}"
    worker = f"'worker web-' || {d.text('h.i % 8')} || ':' || {d.text('4000 + h.i % 8')}"
    message_pk = (
        f"CASE WHEN {d.div(f'{messages} * h.i', str(count))} < 1 THEN 1 "
        f"ELSE {d.div(f'{messages} * h.i', str(count))} END"
    )
    n_mailboxes = len(mailbox_pks)
    return {
        "seq": f"{base} + h.i",
        "at": d.moment(f"{start} + h.i * {SPAN_SECONDS}.0 / {count + 1}"),
        "actor_id": "NULL",
        "actor_label": f"CASE WHEN {person} THEN {people} ELSE {worker} END",
        # Already lower-case, as AuditRecord.save() would fold them.
        "actor_key": f"CASE WHEN {person} THEN {people} ELSE {worker} END",
        "actor_kind": f"CASE WHEN {person} THEN 'person' ELSE 'worker' END",
        "ip_address": d.cast(
            f"CASE WHEN {person} THEN '10.0.0.' || {d.text('h.i % 250 + 1')} ELSE NULL END", "inet"
        ),
        "action": action,
        "object_type": f"CASE WHEN {is_auth} THEN 'auth.user' WHEN {is_mailbox} THEN "
        "'mailboxes.mailbox' ELSE 'messaging.message' END",
        "object_id": f"CASE WHEN {is_auth} THEN {d.text('h.i % 20 + 1')} WHEN {is_mailbox} THEN "
        f"{d.text(f'{mailbox_pks[0]} + h.i % {n_mailboxes}')} ELSE {d.text(message_pk)} END",
        "object_repr": f"CASE WHEN {is_auth} THEN {people} WHEN {is_mailbox} THEN "
        f"'B99MBX' || {d.text(f'h.i % {n_mailboxes}')} ELSE 'message #' || "
        f"{d.text(message_pk)} END",
        # Records about mailboxes and messages carry the mailbox (AuditRecord.mailbox_pk).
        "mailbox_pk": f"CASE WHEN {is_auth} THEN NULL WHEN {is_mailbox} THEN "
        f"{mailbox_pks[0]} + h.i % {n_mailboxes} "
        f"ELSE {_mailbox_of(f'({message_pk})', mailbox_pks)} END",
        "changes": d.cast("'{}'", "jsonb"),
        "reason": "''",
        "detail": "''",
        "prev_hash": d.pad("h.i - 1", 64),
        "hash": d.pad("h.i", 64),
        "__from__": f"(SELECT s.i AS i, (s.i * 2654435761) % {PRIME} AS x "
        f"FROM {d.series(count)} AS s) AS h",
    }


def insert_sql(
    d: Dialect, model, columns: dict[str, str], defaults: dict[str, object]
) -> tuple[str, list]:
    """INSERT INTO table (...) SELECT ... with the model's other columns at their defaults."""
    table = model._meta.db_table
    names, exprs, params = [], [], []
    for field in model._meta.concrete_fields:
        if field.primary_key:
            continue
        names.append(f'"{field.column}"')
        if field.column in columns:
            exprs.append(columns[field.column])
        else:
            exprs.append("\0")
            params.append(defaults[field.column])
    sql = (
        f'INSERT INTO "{table}" ({", ".join(names)}) SELECT {", ".join(exprs)} '
        f"FROM {columns['__from__']}"
    )
    if d.engine == "postgres":  # psycopg's placeholders: a literal % is written %%
        return sql.replace("%", "%%").replace("\0", "%s"), params
    return sql.replace("\0", "?"), params
