"""Portal at scale: list pages with 1,000,000 messages and 2,000,000 audit records, SQLite and PostgreSQL.

``python -m bench portal_scale [--engines sqlite,postgres] [--messages N --audit N] [--reseed]
[--runs N]`` (or ``make bench BENCH_ARGS=portal_scale``); ``--messages 10000000 --audit 20000000``
for a busy organisation's year.

Each engine gets a separate database under ``var/bench/`` (``portal_scale/`` for SQLite at the
default size, ``portal_scale-<engine>-<messages>/`` otherwise), migrated and bulk-seeded once, then
kept between runs: it is seeded again only when missing, incomplete, or with ``--reseed``. New
migrations are applied to the cached copy on every run, so a new index is measured without
reseeding. The rows are made inside the database by one ``INSERT ... SELECT`` over a number
series per table (``bench/scale_seed.py``: the same data on both engines, ten million rows in
minutes rather than hours), with secondary indexes dropped during the load and rebuilt after.
PostgreSQL is a private server from Debian's packages, as ``tests.services`` starts,
its data directory kept under the bench directory and started for the run (foreign-key triggers
off for the load, ``VACUUM ANALYZE`` after). Each engine runs in a child process of
its own, since Django is configured once per process.

The seeded audit records carry made-up hashes: the hash chain is NOT valid in this database (and
``audit_verify`` would say so). That is on purpose: sealing 2,000,000 records one by one would take
far longer than the benchmark, and the pages measured never check hashes.

Pages are timed in this process with Django's test client (signed in with ``force_login`` as an
auditor, or as a mailbox admin for the dashboard, second factor passed; staff who see every
organisation, or with ``--members`` members of the bench organisation, narrowed to their reach;
``--skip`` leaves out pages by label): the median and 95th percentile of N runs after
one warm-up, and the number of SQL queries per page. CSV exports are timed to their first chunk of
rows (time to first byte). Not a test: nothing fails on a slow page, it is flagged in the table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sqlite3
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, unquote

from bench.scale_seed import ENVIRONMENTS, PEOPLE, Dialect, audit_select, insert_sql, message_select

NAME = "portal_scale"
DESCRIPTION = (
    "list pages, dashboard and CSV exports with 1M messages and 2M audit records "
    "(SQLite and PostgreSQL)"
)
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = ROOT / "var" / "bench" / "portal_scale"
RESULTS_DIR = Path(__file__).parent / "results"
BUDGET_MS = 100.0  # issue 18: every page under 100 ms at p95
ENGINES = ("sqlite", "postgres")
SEED_VERSION = 3  # 3: rows made inside the database (bench/scale_seed.py)

# Seeding ------------------------------------------------------------------------------------


def _columns(model) -> dict[str, object]:
    """Each column's default as stored, so new model fields need no edit here."""
    from django.db import connection

    defaults = {}
    for field in model._meta.concrete_fields:
        if not field.primary_key:
            value = field.get_default()
            defaults[field.column] = (
                field.get_db_prep_save(value, connection) if value != "" else ""
            )
    return defaults


def _secondary_indexes(db: sqlite3.Connection, tables: list[str]) -> list[str]:
    placeholders = ", ".join("?" * len(tables))
    rows = db.execute(
        f"SELECT sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
        f"AND tbl_name IN ({placeholders})",
        tables,
    )
    return [sql for (sql,) in rows]


def _seed_mailboxes() -> tuple[list[int], int]:
    """The bench organisation's ten mailboxes (their pks) and the audit chain's length after."""
    from portal.audit.models import ChainHead
    from portal.mailboxes.models import Mailbox, Organisation

    org = Organisation.objects.create(name="Bench Org", ods_code="B99")
    pks = [
        Mailbox.objects.create(
            organisation=org, environment=environment, mailbox_id=f"B99MBX{n}", name=f"Bench {n}"
        ).pk
        for n, environment in enumerate(ENVIRONMENTS)
    ]
    return pks, ChainHead.objects.get(pk=1).last_seq  # the rows just made were audited for real


def _fill(execute, engine: str, messages: int, audit: int, mailbox_pks: list[int], base: int):
    """Both tables by INSERT ... SELECT (see bench/scale_seed.py); `execute(sql, params)`."""
    from portal.audit.models import AuditRecord
    from portal.messaging.models import Message

    dialect, now = Dialect(engine), datetime.now(UTC)
    step = time.perf_counter()
    execute(
        *insert_sql(
            dialect, Message, message_select(dialect, messages, mailbox_pks, now), _columns(Message)
        )
    )
    print(f"  {messages:,} messages in {time.perf_counter() - step:.0f}s", flush=True)
    step = time.perf_counter()
    execute(
        *insert_sql(
            dialect,
            AuditRecord,
            audit_select(dialect, audit, messages, mailbox_pks, now, base),
            _columns(AuditRecord),
        )
    )
    print(f"  {audit:,} audit records in {time.perf_counter() - step:.0f}s", flush=True)


def _index_words() -> None:
    """The message search's words (portal.messaging.search) for the rows loaded without save()."""
    from portal.messaging.search import rebuild_words

    step = time.perf_counter()
    count = rebuild_words(batch=5000)
    print(f"  words of {count:,} messages indexed in {time.perf_counter() - step:.0f}s", flush=True)


def seed(db_path: Path, messages: int, audit: int) -> None:
    """Migrate a fresh SQLite database and fill it. Runs inside the configured Django process."""
    from django.core.management import call_command
    from django.db import connection

    from portal.audit.models import AuditRecord
    from portal.messaging.models import Message

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    mailbox_pks, base = _seed_mailboxes()
    connection.close()
    print(f"  migrated in {time.perf_counter() - started:.0f}s; seeding...", flush=True)
    db = sqlite3.connect(db_path, isolation_level=None)
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA cache_size=-1000000")
    tables = [Message._meta.db_table, AuditRecord._meta.db_table]
    indexes = _secondary_indexes(db, tables)
    db.execute("BEGIN")
    for sql in indexes:
        db.execute(f'DROP INDEX "{sql.split(chr(34))[1]}"')
    _fill(db.execute, "sqlite", messages, audit, mailbox_pks, base)
    step = time.perf_counter()
    for sql in indexes:
        db.execute(sql)
    db.execute(
        "UPDATE audit_chainhead SET last_seq = ?, last_hash = ?, "
        "last_at = (SELECT max(at) FROM audit_auditrecord) WHERE id = 1",
        [base + audit, f"{audit:064d}"],
    )
    db.execute("COMMIT")
    print(f"  {len(indexes)} indexes rebuilt in {time.perf_counter() - step:.0f}s", flush=True)
    # No ANALYZE: NeoMesh never runs it, so a SQLite database in use has no statistics and its
    # planner goes by the indexes alone (with statistics it picks worse plans for two pages here).
    db.execute("PRAGMA journal_mode=WAL")
    db.close()
    _index_words()
    print(f"  seeded in {time.perf_counter() - started:.0f}s", flush=True)


def seed_postgres(messages: int, audit: int) -> None:
    """Migrate the private server's database and fill it. Runs inside Django."""
    from django.core.management import call_command
    from django.db import connection

    from portal.audit.models import AuditRecord
    from portal.messaging.models import Message

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    mailbox_pks, base = _seed_mailboxes()
    print(f"  migrated in {time.perf_counter() - started:.0f}s; seeding...", flush=True)
    tables = [Message._meta.db_table, AuditRecord._meta.db_table]
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")  # no FK triggers for the load
        cursor.execute("SET maintenance_work_mem = '512MB'")
        # Secondary indexes only: those behind a primary key or unique constraint stay.
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s) AND indexname "
            "NOT IN (SELECT conname FROM pg_constraint)",
            [tables],
        )
        indexes = cursor.fetchall()
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        _fill(cursor.execute, "postgres", messages, audit, mailbox_pks, base)
        step = time.perf_counter()
        for _, sql in indexes:
            cursor.execute(sql)
        print(f"  {len(indexes)} indexes rebuilt in {time.perf_counter() - step:.0f}s", flush=True)
        cursor.execute(
            "UPDATE audit_chainhead SET last_seq = %s, last_hash = %s, "
            "last_at = (SELECT max(at) FROM audit_auditrecord) WHERE id = 1",
            [base + audit, f"{audit:064d}"],
        )
        cursor.execute("SET session_replication_role = DEFAULT")
        _index_words()
        step = time.perf_counter()
        cursor.execute("VACUUM ANALYZE")
        print(f"  vacuumed and analysed in {time.perf_counter() - step:.0f}s", flush=True)
    print(f"  seeded in {time.perf_counter() - started:.0f}s", flush=True)


class BenchPostgres:
    """A private PostgreSQL server whose data directory is kept under the bench directory."""

    def __init__(self, workdir: Path):
        from tests.services import PostgresServer

        self.server = PostgresServer(workdir / "pg")
        # A production-like cache for a database of several GB, on a machine shared with others.
        self.server.options = "-c shared_buffers=1GB -c effective_cache_size=4GB -c work_mem=16MB"

    def start(self) -> str:
        self.server.start(keep=True)
        return self.server.url

    def stop(self) -> None:
        self.server.stop(mode="fast")

    def fresh_database(self) -> None:
        """Drop and create the database (a seed that stopped halfway leaves rows behind)."""
        from django.db import connections

        from tests.services import _as_postgres, _pg_bin

        connections.close_all()
        host = ["-h", "127.0.0.1", "-p", str(self.server.port), "-U", "neomesh"]
        subprocess.run(
            _as_postgres([_pg_bin("dropdb"), *host, "--if-exists", "--force", "neomesh"]),
            check=True,
            capture_output=True,
        )
        self.server.create_database("neomesh")


# Configuration ------------------------------------------------------------------------------


def configure_django(workdir: Path, database_url: str | None = None) -> Path:
    """Point Django at the bench database before it loads settings; returns the database path."""
    workdir.mkdir(parents=True, exist_ok=True)
    db_path = workdir / "portal_scale.sqlite3"
    os.environ["DATABASE_URL"] = database_url or f"sqlite:///{db_path}"
    os.environ["NEOMESH_VAR_DIR"] = str(workdir)
    os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings"
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    return db_path


def ensure_seeded(workdir: Path, db_path: Path, args, server: BenchPostgres | None = None) -> None:
    engine = "postgres" if server else "sqlite"
    marker = workdir / "seeded.json"
    wanted = {"version": SEED_VERSION, "messages": args.messages, "audit": args.audit}
    present = db_path.exists() if engine == "sqlite" else True
    current = json.loads(marker.read_text()) if marker.exists() and present else None
    if current == wanted and not args.reseed:
        from django.core.management import call_command

        print(f"Using the seeded database {db_path} (--reseed to rebuild)", flush=True)
        call_command("migrate", verbosity=0)  # new indexes apply to the cached copy
        return
    where = "PostgreSQL under " + str(workdir) if server else str(db_path)
    print(f"Seeding {where}: {args.messages:,} messages, {args.audit:,} audit records", flush=True)
    marker.unlink(missing_ok=True)
    if server is not None:
        server.fresh_database()
        seed_postgres(args.messages, args.audit)
    else:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db_path}{suffix}").unlink(missing_ok=True)
        seed(db_path, args.messages, args.audit)
    marker.write_text(json.dumps(wanted))


# Measuring ----------------------------------------------------------------------------------


@dataclass
class Timing:
    page: str
    url: str
    persona: str
    median_ms: float
    p95_ms: float
    queries: int
    rows: int
    over_budget: bool


def _personas(members: bool = False):
    from django.contrib.auth.models import Group, User

    from portal.accounts.models import Membership
    from portal.accounts.people import every_organisation_permission
    from portal.accounts.roles import AUDITOR, MAILBOX_ADMIN, ensure_roles
    from portal.mailboxes.models import Organisation

    ensure_roles()
    users = {}
    for name, role in (("bench-auditor", AUDITOR), ("bench-admin", MAILBOX_ADMIN)):
        user, _ = User.objects.get_or_create(username=name)
        user.groups.add(Group.objects.get(name=role))
        if members:
            # A customer's people: members of the bench organisation (every page narrows its
            # rows to their reach).
            for organisation in Organisation.objects.all():
                Membership.objects.get_or_create(user=user, organisation=organisation)
            # Not staff as well (a run for staff before left them every organisation).
            user.user_permissions.remove(every_organisation_permission())
        else:
            # NeoMesh's own staff, who see every organisation (the pages' plain paths).
            user.user_permissions.add(every_organisation_permission())
        users[name] = user
    return users


def _rows_on(response) -> int:
    """Table rows on a page (outside the test runner, responses carry no template context)."""
    html = response.content.decode()
    return max(0, html.count("<tr>") - html.count("<thead>"))


def _get(client, url: str, streaming_first_chunk: bool):
    """One request; for a streaming export, only until its first chunk of rows."""
    response = client.get(url)
    if streaming_first_chunk and response.streaming:
        chunk = next(iter(response.streaming_content), b"")
        response.close()
        return response, chunk.count(b"\n") - 1
    return response, None


def measure(client, label: str, url: str, persona: str, runs: int, stream: bool = False) -> Timing:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    response, rows = _get(client, url, stream)  # warm-up
    assert response.status_code == 200, (url, response.status_code)
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        _get(client, url, stream)
        samples.append((time.perf_counter() - started) * 1000)
    with CaptureQueriesContext(connection) as queries:
        response, streamed = _get(client, url, stream)
    samples.sort()
    p95 = samples[min(len(samples) - 1, int(round(0.95 * (len(samples) - 1))))]
    median = statistics.median(samples)
    return Timing(
        label,
        url,
        persona,
        round(median, 1),
        round(p95, 1),
        len(queries),
        streamed if stream else _rows_on(response),
        p95 > BUDGET_MS,
    )


def _first(client, url: str) -> str:
    """The keyset cursor of a list page's "Older" link."""
    response = client.get(url)
    found = re.search(r'after=([^"&]+)" rel="next"', response.content.decode())
    if response.status_code != 200 or found is None:
        raise SystemExit(f"{url} answered {response.status_code} without an 'Older' link")
    return unquote(found.group(1))


def _with_page_twos(client, path: str, entries) -> list[tuple[str, str, str, bool]]:
    """Entries with a query of None are page 2 of the entry above, by its "Older" link."""
    result, previous = [], ""
    for label, query in entries:
        if query is None:
            cursor = quote(_first(client, f"{path}?{previous}"))
            query = f"{previous}&after={cursor}" if previous else f"after={cursor}"
        previous = query
        result.append((label, f"{path}?{query}" if query else path, "bench-auditor", False))
    return result


def pages(client_for) -> list[tuple[str, str, str, bool]]:
    """(label, url, persona, streaming) for every page measured."""
    from django.urls import reverse

    from portal.messaging.models import Message

    auditor = client_for("bench-auditor")
    sample = Message.objects.order_by("-id").values("mesh_message_id", "local_id", "filename")
    probe = sample.filter(local_id__gt="").exclude(mesh_message_id=None)[1000]
    today = datetime.now(UTC).date()
    week_ago, month_ago = today - timedelta(days=7), today - timedelta(days=30)
    messages, trail = reverse("messaging:list"), reverse("audit:trail")
    old_from, old_to = today - timedelta(days=61), today - timedelta(days=60)
    listing = [
        ("Message list", ""),
        ("  page 2 (keyset)", None),
        ("  mailbox", "mailbox=3"),
        ("  environment (busy)", "environment=live"),
        ("  environment (busy), page 2", None),
        ("  environment (few messages)", "environment=deployment"),
        ("  direction in", "direction=in"),
        ("  status failed (rare)", "status=failed"),
        ("  status acknowledged (common)", "status=acknowledged"),
        ("  workflow (rare)", "workflow=RARE_WORKFLOW"),
        ("  workflow (none match)", "workflow=NO_SUCH_WORKFLOW"),
        ("  sender", "sender=X07PARTNER0"),
        ("  sender (none match)", "sender=NOBODY"),
        ("  recipient", "recipient=B99MBX4"),
        ("  date range (1 day, 60 days ago)", f"date_from={old_from}&date_to={old_to}"),
        ("  date range (last 7 days)", f"date_from={week_ago}"),
        ("  combination", f"mailbox=2&direction=out&status=acknowledged&date_from={month_ago}"),
        ("  combination, page 2", None),
        ("  environment + status", "environment=integration&status=failed"),
        ("  search MESH message id", f"q={probe['mesh_message_id']}"),
        ("  search local id", f"q={probe['local_id']}"),
        ("  search MESH message id, lower case", f"q={probe['mesh_message_id'].lower()}"),
        ("  search MESH message id prefix", f"q={probe['mesh_message_id'][:15]}"),
        ("  search filename prefix", f"q={probe['filename'][:24]}"),
        ("  search words (rare)", f"q={quote(probe['filename'].split('-')[-1][:7])}+CSV"),
        ("  search words (common)", "q=batch+csv"),
        # Each word in many messages, together only on one old day: the walk runs out of its time
        # and the matches are collected from the word index (portal.messaging.search).
        ("  search words (together only long ago)", f"q=batch+{old_from:%Y%m%d}"),
        ("  search words (none match)", "q=zzzz"),
    ]
    result = [("Dashboard", reverse("dashboard:home"), "bench-admin", False)]
    result += _with_page_twos(auditor, messages, listing)
    trail_pages = [
        ("Audit trail", ""),
        ("  page 2 (keyset)", None),
        ("  actor", f"actor={PEOPLE[3]}"),
        ("  actor, any case and prefix", f"actor={PEOPLE[3][:-1].upper()}"),
        ("  actor prefix (every worker)", "actor=worker"),
        ("  action", "action=auth.login_failed"),
        ("  object (type and id)", "object_type=messaging.message&object_id=500000"),
        ("  object type (rare)", "object_type=mailboxes.mailbox"),
        ("  object type (common)", "object_type=messaging.message"),
        ("  date range (1 day, 60 days ago)", f"date_from={old_from}&date_to={old_to}"),
        ("  actor and date range", f"actor={PEOPLE[3]}&date_from={old_from}&date_to={old_to}"),
    ]
    result += _with_page_twos(auditor, trail, trail_pages)
    some_message = Message.objects.order_by("-id").values_list("pk", flat=True)[5000]
    from django.contrib.auth.models import User

    from portal.accounts.reach import Reach
    from portal.audit.models import AuditRecord

    # One the auditor may read (a member reads only records about what is within their reach).
    readable = AuditRecord.objects.within(Reach(User.objects.get(username="bench-auditor")))
    some_record = readable.order_by("-seq").values_list("seq", flat=True)[100]
    result += [
        (
            "Message detail (+ audit records)",
            reverse("messaging:detail", args=[some_message]),
            "bench-auditor",
            False,
        ),
        (
            "Audit record detail",
            reverse("audit:detail", args=[some_record]),
            "bench-auditor",
            False,
        ),
        ("Message log CSV, first rows", reverse("messaging:export"), "bench-auditor", True),
        (
            "Message log CSV, filtered",
            f"{reverse('messaging:export')}?direction=out&status=failed",
            "bench-auditor",
            True,
        ),
        ("Audit trail CSV, first rows", reverse("audit:export"), "bench-auditor", True),
        (
            "Audit trail CSV, by action",
            f"{reverse('audit:export')}?action=auth.login",
            "bench-auditor",
            True,
        ),
    ]
    return result


def format_table(timings: list[Timing]) -> str:
    header = f"{'page':<36} {'median ms':>9} {'p95 ms':>8} {'queries':>7} {'rows':>5}  flag"
    lines = [header, "-" * len(header)]
    for t in timings:
        flag = f"OVER {BUDGET_MS:.0f} ms" if t.over_budget else ""
        lines.append(
            f"{t.page:<36} {t.median_ms:>9.1f} {t.p95_ms:>8.1f} {t.queries:>7} {t.rows:>5}  {flag}"
        )
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--engines", default=",".join(ENGINES), help="comma-separated: sqlite, postgres"
    )
    parser.add_argument("--reseed", action="store_true", help="rebuild the seeded database")
    parser.add_argument("--runs", type=int, default=20, help="timed runs per page (default 20)")
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--audit", type=int, default=2_000_000)
    parser.add_argument(
        "--dir",
        default="",
        help=f"where the database lives (default {DEFAULT_DIR} for SQLite at the default size, "
        "portal_scale-<engine>-<messages> beside it otherwise)",
    )
    parser.add_argument("--only", default="", help="measure only pages whose label contains this")
    parser.add_argument(
        "--skip",
        default="",
        help="comma-separated: skip pages whose label contains any of these",
    )
    parser.add_argument(
        "--members",
        action="store_true",
        help="sign in as members of the bench organisation rather than staff who see every one",
    )
    parser.add_argument(
        "--no-save", action="store_true", help=f"do not write JSON to {RESULTS_DIR}"
    )


def _workdir(args, engine: str) -> Path:
    if args.dir:
        return Path(args.dir).resolve()
    if engine == "sqlite" and args.messages == 1_000_000:
        return DEFAULT_DIR  # where earlier runs kept it
    return DEFAULT_DIR.parent / f"portal_scale-{engine}-{args.messages}"


def run(args: argparse.Namespace) -> int:
    if args.runs < 10:
        raise SystemExit("--runs must be at least 10 for a meaningful p95")
    engines = [name.strip() for name in args.engines.split(",") if name.strip()]
    unknown = sorted(set(engines) - set(ENGINES))
    if unknown or not engines:
        raise SystemExit(f"--engines: choose from {', '.join(ENGINES)}.")
    if len(engines) > 1:
        # Django is configured once per process: one child per engine.
        failed = 0
        for engine in engines:
            print(f"\n--- {engine} ---", flush=True)
            command = [
                sys.executable,
                "-m",
                "bench",
                NAME,
                f"--engines={engine}",
                f"--runs={args.runs}",
                f"--messages={args.messages}",
                f"--audit={args.audit}",
                f"--only={args.only}",
                f"--skip={args.skip}",
                *(["--members"] if args.members else []),
                *(["--dir", args.dir] if args.dir else []),
                *(["--reseed"] if args.reseed else []),
                *(["--no-save"] if args.no_save else []),
            ]
            failed += subprocess.run(command, cwd=ROOT).returncode != 0
        return 1 if failed else 0
    engine = engines[0]
    workdir = _workdir(args, engine)
    server = None
    if engine == "postgres":
        if str(ROOT) not in sys.path:
            sys.path.insert(0, str(ROOT))
        server = BenchPostgres(workdir)
        url = server.start()
    try:
        db_path = configure_django(workdir, url if server else None)
        ensure_seeded(workdir, db_path, args, server)
        return _measure_all(args, engine)
    finally:
        if server is not None:
            from django.db import connections

            connections.close_all()
            server.stop()


def _measure_all(args: argparse.Namespace, engine: str) -> int:
    from django.test import Client

    from portal.accounts.factors import SESSION_KEY as FACTOR_SESSION_KEY

    users = _personas(members=args.members)
    clients: dict[str, Client] = {}

    def client_for(name: str) -> Client:
        if name not in clients:
            clients[name] = Client()
            clients[name].force_login(users[name])
            session = clients[name].session  # signed in with a second factor, as MFA requires
            session[FACTOR_SESSION_KEY] = {
                "user": users[name].pk,
                "at": time.time(),
                "method": "totp",
            }
            session.save()
        return clients[name]

    timings = []
    for label, url, persona, stream in pages(client_for):
        if args.only and args.only.lower() not in label.lower():
            continue
        skipped = [word.strip().lower() for word in args.skip.split(",") if word.strip()]
        if any(word in label.lower() for word in skipped):
            continue
        timing = measure(client_for(persona), label, url, persona, args.runs, stream)
        print(
            f"{timing.page:<36} {timing.median_ms:>8.1f} ms  p95 {timing.p95_ms:>7.1f} ms  "
            f"{timing.queries} queries",
            flush=True,
        )
        timings.append(timing)
    print()
    print(format_table(timings))
    over = [t.page.strip() for t in timings if t.over_budget]
    print(
        f"\n{engine}, {args.messages:,} messages, {args.audit:,} audit records: "
        f"{len(timings)} pages, {args.runs} runs each; "
        + (
            f"OVER {BUDGET_MS:.0f} ms: {', '.join(over)}"
            if over
            else f"all under {BUDGET_MS:.0f} ms (p95)"
        )
    )
    if not args.no_save:
        RESULTS_DIR.mkdir(exist_ok=True)
        path = RESULTS_DIR / (
            f"portal_scale-{engine}-{args.messages}-{time.strftime('%Y%m%d-%H%M%S')}.json"
        )
        document = {
            "machine": {
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "platform": platform.platform(),
            },
            "engine": engine,
            "messages": args.messages,
            "audit": args.audit,
            "runs": args.runs,
            "timings": [asdict(t) for t in timings],
        }
        path.write_text(json.dumps(document, indent=2))
        print(f"results saved to {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench portal_scale", description=DESCRIPTION)
    add_arguments(parser)
    return run(parser.parse_args(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
