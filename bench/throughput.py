"""End-to-end throughput: small messages from queued to acknowledged, through real worker clusters.

``python -m bench throughput [--messages N] [--workers 1,2] [--engines sqlite,postgres]
[--delays 0,20,80] [--backlog]`` (or ``make bench BENCH_ARGS=throughput``).

``--backlog`` measures a backlog after an outage instead: the messages are queued while no worker
runs, then the workers start and send them all (no poll meanwhile), then one poll receives them
all; it reports each side's rate (``bench/results/throughput-backlog.json``).

For each engine and each worker count, a fresh database is migrated and seeded with the demo
mailboxes (``seed_demo``) pointing at a local mesh-sandbox, then that many ``manage.py qcluster``
processes are started, each with one worker process (``Q_WORKERS=1``): several clusters side by
side, as on several hosts, claiming their work in the database. N small messages (about 100 bytes
each) are queued from X26ABC1 to X26ABC2 the way the send page queues them, by ``--queuers``
threads at once (4, as that many web or API requests) while the workers run. The clock runs from
the first message queued until the last one has been downloaded, stored and acknowledged by
X26ABC2's poller (MESH's "acknowledged"); the time until all were queued and until MESH accepted
the last send are reported too. The benchmark keeps one poll of X26ABC2 and one outbox sweep
waiting or running (each enqueued again as soon as the last has run), which the schedules do
every minute: the figure is what the workers can move, not the poll interval. (It once enqueued
both four times a second whatever was pending: hundreds of tasks that found a poll running or
nothing to send.) The workers run with DEBUG off, as in production, and
``--concurrency N`` sets their ``POLL_CONCURRENCY`` and ``OUTBOX_CONCURRENCY``.

Latency: with ``--delays``, each run goes through ``LatencyProxy`` (``tests/peers/proxy.py``), which
holds every MESH request for that many milliseconds before passing it to the sandbox (0 = the
proxy's own cost only), so the figures say what a round trip to live MESH would cost. (Until
December 2026 the proxy answered with Nagle's algorithm on, and each answer waited for the
client's delayed ACK, up to 40 ms a request: the figures of that time are far too low.) Each run also reports the
peak resident memory of the largest worker process (``VmHWM``), sampled every second, to show
whether a worker's memory grows with the backlog (compare ``--messages 200`` and ``2000``), and the
CPU time the worker processes spent per message (all their processes, SQLite's work included), which
says what the machine bounds the rate to when it is busy with other work.

Engines: ``sqlite`` is the embedded default (SQLite in WAL mode, django-q2's ORM broker);
``postgres`` is PostgreSQL and Redis from Debian's packages, started privately on loopback by
``tests.services`` (``make services`` installs them). Each configuration runs in child processes
(``bench.throughput_child``) so that each has its own Django settings. Not a test: nothing fails
on a slow figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

NAME = "throughput"
DESCRIPTION = (
    "end-to-end small-message throughput, 1 and 2 worker processes, SQLite and PostgreSQL+Redis, "
    "0/20/80 ms added to every MESH request"
)
ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).parent / "results"
ENGINES = ("sqlite", "postgres")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--messages", type=int, default=500, help="messages per run (default 500)")
    parser.add_argument(
        "--workers", default="1,2", help="comma-separated worker process counts (default 1,2)"
    )
    parser.add_argument(
        "--engines", default=",".join(ENGINES), help="comma-separated: sqlite, postgres"
    )
    parser.add_argument(
        "--delays",
        default="0,20,80",
        help="comma-separated milliseconds added to every MESH request (default 0,20,80)",
    )
    parser.add_argument(
        "--deadline", type=float, default=900, help="seconds before a run is abandoned"
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=0,
        help="POLL_CONCURRENCY and OUTBOX_CONCURRENCY for the workers (default: the settings')",
    )
    parser.add_argument(
        "--queuers",
        type=int,
        default=4,
        help="threads queuing the messages at once, as that many web or API requests (default 4)",
    )
    parser.add_argument(
        "--backlog",
        action="store_true",
        help="a backlog after an outage: queue all with no worker running, then measure how fast "
        "the workers send them all, then how fast one poll receives them all",
    )


def _parse(args: argparse.Namespace) -> tuple[list[str], list[int], list[float]]:
    engines = [name.strip() for name in args.engines.split(",") if name.strip()]
    unknown = sorted(set(engines) - set(ENGINES))
    if unknown:
        raise SystemExit(f"Unknown engine {', '.join(unknown)}: choose from {', '.join(ENGINES)}.")
    try:
        workers = [int(n) for n in args.workers.split(",") if n.strip()]
    except ValueError:
        raise SystemExit("--workers takes whole numbers, e.g. 1,2.") from None
    if not workers or min(workers) < 1 or args.messages < 1 or args.queuers < 1:
        raise SystemExit("--workers, --messages and --queuers must be at least 1.")
    if args.concurrency < 0:
        raise SystemExit("--concurrency must be 1 or more (0: the settings' default).")
    try:
        delays = [float(n) for n in args.delays.split(",") if n.strip()]
    except ValueError:
        raise SystemExit("--delays takes milliseconds, e.g. 0,20,80.") from None
    if not delays or min(delays) < 0:
        raise SystemExit("--delays must name at least one delay, none negative.")
    return engines, workers, delays


def run(args: argparse.Namespace) -> int:
    engines, workers, delays = _parse(args)
    sys.path.insert(0, str(ROOT))
    from tests.peers.proxy import LatencyProxy
    from tests.sandbox import MeshSandbox

    root = Path(tempfile.mkdtemp(prefix="neomesh-throughput-"))
    os.chmod(root, 0o755)
    results = []
    print(f"Throughput: {args.messages} small messages X26ABC1 -> X26ABC2 per run", flush=True)
    try:
        with MeshSandbox() as sandbox:
            for engine in engines:
                with _engine(engine, root) as databases:
                    for delay in delays:
                        for count in workers:
                            sandbox.reset()
                            name = f"w{count}d{delay:g}".replace(".", "_")
                            with LatencyProxy(sandbox.url, delay) as proxy:
                                env = databases(name) | {"MESH_SANDBOX_URL": proxy.url}
                                result = _child(env, root / f"{engine}-{name}", count, args)
                            result |= {
                                "engine": engine,
                                "delay_ms": delay,
                                "mesh_requests": proxy.requests,
                            }
                            results.append(result)
                            print(_row(results[-1]), flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print()
    print(format_table(results))
    _save(results, args)
    return 0 if all(r.get("complete") for r in results) else 1


class _engine:
    """A context giving, per run, the environment that points a child at a fresh database."""

    def __init__(self, engine: str, root: Path):
        self.engine, self.root = engine, root / engine
        self.servers: list = []

    def __enter__(self):
        if self.engine == "sqlite":
            self.root.mkdir(parents=True, exist_ok=True)
            return lambda name: {"DATABASE_URL": f"sqlite:///{self.root / f'{name}.sqlite3'}"}
        from tests.services import PostgresServer, RedisServer

        postgres, redis = PostgresServer(self.root / "pg"), RedisServer(self.root / "redis")
        self.servers = [postgres.start(), redis.start()]
        runs = iter(range(1, 10_000))

        def databases(name: str) -> dict[str, str]:
            postgres.create_database(f"neomesh_{name}")
            # A Redis database of its own per run, so no task of an earlier run is left over.
            return {
                "DATABASE_URL": postgres.url.rsplit("/", 1)[0] + f"/neomesh_{name}",
                "REDIS_URL": redis.url.rsplit("/", 1)[0] + f"/{next(runs)}",
            }

        return databases

    def __exit__(self, *exc) -> None:
        for server in reversed(self.servers):
            server.stop()


def _child(env: dict[str, str], workdir: Path, clusters: int, args) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    child_env = {
        **os.environ,
        **env,
        "NEOMESH_VAR_DIR": str(workdir),
        "PAYLOAD_ROOT": str(workdir / "payloads"),
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "LOG_LEVEL": "WARNING",
        # As in production: with DEBUG on, Django keeps and formats every query it runs.
        "DJANGO_DEBUG": "false",
    }
    if args.concurrency:
        child_env["POLL_CONCURRENCY"] = child_env["OUTBOX_CONCURRENCY"] = str(args.concurrency)
    child_env.pop("NEOMESH_PRODUCTION", None)
    command = [
        sys.executable,
        "-m",
        "bench.throughput_child",
        "--messages",
        str(args.messages),
        "--clusters",
        str(clusters),
        "--deadline",
        str(args.deadline),
        "--workdir",
        str(workdir),
        "--queuers",
        str(args.queuers),
    ] + (["--backlog"] if args.backlog else [])
    done = subprocess.run(command, cwd=ROOT, env=child_env, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
        return {"workers": clusters, "messages": args.messages, "complete": False, "error": tail}
    return json.loads(lines[-1])


def _row(result: dict) -> str:
    label = f"{result['engine']:<9} +{result['delay_ms']:g} ms {result['workers']} worker(s)"
    if result.get("error"):
        return f"{label}: FAILED\n{result['error']}"
    if result.get("backlog"):
        if not result.get("complete"):
            return f"{label}: backlog incomplete ({result['acknowledged']} acknowledged)"
        return (
            f"{label}: backlog sent at {result['send_rate']:.1f} msg/s, received by one poll at "
            f"{result['receive_rate']:.1f} msg/s ({result['mesh_requests']} MESH requests, "
            f"worker peak RSS {result['peak_rss_mb']:.0f} MB)"
        )
    if not result.get("complete"):
        return f"{label}: incomplete after {result['done_s']:.0f} s ({result['acknowledged']} acknowledged)"
    return (
        f"{label}: {result['rate']:.1f} msg/s queued->acknowledged "
        f"(accepted {result['accepted_rate']:.1f} msg/s, {result['done_s']:.1f} s, "
        f"{result['mesh_requests']} MESH requests, worker peak RSS {result['peak_rss_mb']:.0f} MB)"
    )


BACKLOG_COLUMNS = (
    "backlog sent",
    "msg/s sent",
    "worker CPU a message sent",
    "one poll received",
    "msg/s received",
    "worker CPU a message received",
    "worker peak RSS",
)
FLOW_COLUMNS = (
    "all queued",
    "queued → all accepted",
    "queued → all acknowledged",
    "msg/s end to end",
    "worker CPU a message",
    "worker peak RSS",
)


def _backlog_cells(r: dict) -> list[str]:
    return [
        f"{r['sent_s']:.1f} s",
        f"{r['send_rate']:.1f}",
        f"{r['send_cpu_ms_per_message']:.0f} ms",
        f"{r['received_s']:.1f} s",
        f"{r['receive_rate']:.1f}",
        f"{r['receive_cpu_ms_per_message']:.0f} ms",
        f"{r['peak_rss_mb']:.0f} MB",
    ]


def _flow_cells(r: dict) -> list[str]:
    return [
        f"{r['queued_s']:.1f} s",
        f"{r['accepted_s']:.1f} s",
        f"{r['done_s']:.1f} s",
        f"{r['rate']:.1f}",
        f"{r.get('worker_cpu_ms_per_message', 0):.0f} ms",
        f"{r['peak_rss_mb']:.0f} MB",
    ]


def format_table(results: list[dict]) -> str:
    """A Markdown table of the runs: each side's backlog rates, or the flow's times and rate."""
    backlog = bool(results and results[0].get("backlog"))
    columns, cells = (BACKLOG_COLUMNS, _backlog_cells) if backlog else (FLOW_COLUMNS, _flow_cells)
    head = ("engine", "added latency", "worker processes", "messages", *columns)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        failed = r.get("error") or not r.get("complete")
        row = ["failed", *["-"] * (len(columns) - 1)] if failed else cells(r)
        first = [r["engine"], f"{r['delay_ms']:g} ms", str(r["workers"]), str(r["messages"])]
        lines.append("| " + " | ".join(first + row) + " |")
    return "\n".join(lines)


def _save(results: list[dict], args: argparse.Namespace) -> None:
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / ("throughput-backlog.json" if args.backlog else "throughput.json")
    machine = {"python": platform.python_version(), "cpus": os.cpu_count(), "host": platform.node()}
    path.write_text(
        json.dumps(
            {
                "machine": machine,
                "messages": args.messages,
                "delays_ms": args.delays,
                "concurrency": args.concurrency or "settings default",
                "queuers": args.queuers,
                "results": results,
            },
            indent=2,
        )
    )
    print(f"\nSaved {path.relative_to(ROOT)}")
