"""At-rest benchmark: what payload encryption costs, plain and encrypted side by side.

For each data kind, a payload file is generated, then with PAYLOAD_ENCRYPTION off and on, each
phase runs in its own child process (bench/at_rest_child.py) so its peak RSS is its own:

- store / read: the payload API alone (write through `durable_writer`, read through
  `open_payload`), no network: the raw cost of AES-256-GCM segments on this machine;
- send: the outbox's path, a stored payload read through the payload API and sent to a local
  mesh-sandbox by meshcore;
- receive: the inbox's path, downloaded by meshcore into the payload API and acknowledged.

Every received payload's sha256 must equal the source's. Goal (issue 19): encryption costs <= 10%
of send and receive throughput and no extra memory.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.payloads import MiB, write_payload

NAME = "at_rest"
DESCRIPTION = (
    "payload encryption at rest: store/read/send/receive MiB/s and peak RSS, plain vs encrypted"
)
RESULTS_DIR = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parent.parent
PHASES = ("store", "read", "send", "receive")
MODES = ("plain", "encrypted")


def _env(workdir: str, mode: str) -> dict:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "NEOMESH_VAR_DIR": str(Path(workdir) / "var"),
        "PAYLOAD_ROOT": str(Path(workdir) / f"payloads-{mode}"),
        "PAYLOAD_ENCRYPTION": "true" if mode == "encrypted" else "false",
        "LOG_LEVEL": "WARNING",
    }
    env.pop("NEOMESH_PRODUCTION", None)
    env.pop("PAYLOAD_STORE", None)
    return env


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--size", type=int, default=100, help="payload size in MiB (default 100)")
    parser.add_argument("--kinds", default="csv,random", help="data kinds (csv, random)")
    parser.add_argument("--repeat", type=int, default=5, help="rounds; the median is kept")
    parser.add_argument("--quick", action="store_true", help="50 MiB, one run")
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/")


def _child(env: dict, phase: str, **options) -> dict:
    os.sync()  # untimed: one run's dirty pages do not slow the next
    command = [sys.executable, "-m", "bench.at_rest_child", phase]
    for name, value in options.items():
        command += [f"--{name.replace('_', '-')}", str(value)]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{phase} failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(args: argparse.Namespace) -> int:
    from tests.sandbox import MeshSandbox

    size = 50 if args.quick else args.size
    repeat = 1 if args.quick else max(1, args.repeat)
    kinds = [kind for kind in args.kinds.split(",") if kind]
    rows, ok = [], True
    with tempfile.TemporaryDirectory(prefix="at-rest-bench-") as workdir, MeshSandbox() as sandbox:
        print(f"mesh-sandbox on {sandbox.url}; work in {workdir}", flush=True)
        for kind in kinds:
            source = Path(workdir) / f"source-{kind}.bin"
            digest = write_payload(source, kind, size * MiB)
            runs = {mode: {phase: [] for phase in PHASES} for mode in MODES}
            # Plain and encrypted alternate within each round, so a busy machine's load drifts
            # over both alike; the median of the rounds is kept.
            for _ in range(repeat):
                for mode in MODES:
                    env = _env(workdir, mode)
                    sandbox.reset()
                    stored = _child(env, "store", file=source)
                    read = _child(env, "read", name=stored["name"])
                    sent = _child(env, "send", url=sandbox.url, name=stored["name"])
                    got = _child(env, "receive", url=sandbox.url, message_id=sent["message_id"])
                    ok &= stored["sha256"] == read["sha256"] == got["sha256"] == digest
                    for phase, result in zip(PHASES, (stored, read, sent, got), strict=True):
                        runs[mode][phase].append(result)
            for mode in MODES:
                row = {"kind": kind, "mode": mode, "size_mib": size, "rounds": repeat}
                for phase in PHASES:
                    results = runs[mode][phase]
                    row[f"{phase}_mib_s"] = size / statistics.median(r["seconds"] for r in results)
                    row[f"{phase}_cpu_ms_per_mib"] = (
                        1000 * statistics.median(r["cpu_seconds"] for r in results) / size
                    )
                    row[f"{phase}_rss_mib"] = max(r["peak_rss_kib"] for r in results) / 1024
                rows.append(row)
                print(_row(row), flush=True)
            source.unlink()
    print()
    print(format_table(rows))
    if not args.no_save:
        RESULTS_DIR.mkdir(exist_ok=True)
        (RESULTS_DIR / "at_rest.json").write_text(json.dumps(rows, indent=2) + "\n")
    if not ok:
        print("SHA256 MISMATCH: a payload did not come back as it was sent.")
    return 0 if ok else 1


def _row(row: dict) -> str:
    return f"{row['kind']:6} {row['mode']:9} " + "  ".join(
        f"{phase} {row[f'{phase}_mib_s']:7.1f} MiB/s {row[f'{phase}_rss_mib']:5.0f} MiB"
        for phase in PHASES
    )


def format_table(rows: list[dict]) -> str:
    lines = [
        "| data | payloads | store MiB/s | read MiB/s | send MiB/s | receive MiB/s "
        "| CPU ms/MiB store / read / send / receive | peak RSS send / receive (MiB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['kind']} | {row['mode']} | {row['store_mib_s']:.0f} | {row['read_mib_s']:.0f} | "
            f"{row['send_mib_s']:.1f} | {row['receive_mib_s']:.1f} | "
            + " / ".join(f"{row[f'{p}_cpu_ms_per_mib']:.1f}" for p in PHASES)
            + f" | {row['send_rss_mib']:.0f} / {row['receive_rss_mib']:.0f} |"
        )
    by = {(r["kind"], r["mode"]): r for r in rows}
    for kind in dict.fromkeys(r["kind"] for r in rows):
        plain, enc = by.get((kind, "plain")), by.get((kind, "encrypted"))
        if plain and enc:
            cost = {p: 100 * (1 - enc[f"{p}_mib_s"] / plain[f"{p}_mib_s"]) for p in PHASES}
            cpu = {
                p: 100 * (enc[f"{p}_cpu_ms_per_mib"] / plain[f"{p}_cpu_ms_per_mib"] - 1)
                for p in PHASES
            }
            lines.append(
                f"\n{kind}: encryption costs "
                + ", ".join(f"{p} {c:+.1f}%" for p, c in cost.items())
                + " of throughput (wall clock); CPU per MiB "
                + ", ".join(f"{p} {c:+.1f}%" for p, c in cpu.items())
                + f"; peak RSS send {enc['send_rss_mib'] - plain['send_rss_mib']:+.0f} MiB,"
                f" receive {enc['receive_rss_mib'] - plain['receive_rss_mib']:+.0f} MiB"
            )
    return "\n".join(lines)
