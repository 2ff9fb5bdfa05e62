"""Transfer benchmark: meshcore against the official mesh-client, side by side, one sandbox.

For every size and data kind, a payload file is generated (streamed, never in memory), then each
client sends it through a local mesh-sandbox and receives it back into a file, each phase in its
own child process (bench/transfer_client.py) so peak RSS is the client's own. Both clients use
20 MiB chunks and gzip; the received file's sha256 must equal the sent file's.

The sandbox keeps messages in memory, so it is reset before every transfer.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from bench.payloads import KINDS, MiB, sha256_file, write_payload

NAME = "transfer"
DESCRIPTION = (
    "send and receive 10 MiB / 200 MiB / 1 GiB through mesh-sandbox: meshcore vs mesh-client"
)
CLIENTS = ("meshcore", "mesh-client")
RESULTS_DIR = Path(__file__).parent / "results"


@dataclass
class Result:
    size_mib: int
    kind: str
    client: str
    send_mib_s: float
    receive_mib_s: float
    peak_rss_mib: float
    send_rss_mib: float
    receive_rss_mib: float
    baseline_rss_mib: float
    verified: bool


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sizes",
        default="10,200,1024",
        help="message sizes in MiB, comma separated (default 10,200,1024)",
    )
    parser.add_argument(
        "--kinds", default=",".join(KINDS), help="csv, random or both (default both)"
    )
    parser.add_argument(
        "--clients", default=",".join(CLIENTS), help="meshcore, mesh-client or both"
    )
    parser.add_argument(
        "--chunk-mib", type=int, default=20, help="chunk size for both clients (default 20)"
    )
    parser.add_argument("--quick", action="store_true", help="only 10 and 50 MiB: a smoke run")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per case; speeds are medians (default 1)"
    )
    parser.add_argument("--workdir", help="where payload files go (default: a temporary directory)")
    parser.add_argument(
        "--no-save", action="store_true", help=f"do not write JSON results to {RESULTS_DIR}"
    )


def run(args: argparse.Namespace) -> int:
    sizes = [10, 50] if args.quick else [int(size) for size in args.sizes.split(",") if size]
    kinds = [kind for kind in args.kinds.split(",") if kind]
    clients = [client for client in args.clients.split(",") if client]
    from tests.sandbox import MeshSandbox  # the same helper the tests use

    results: list[Result] = []
    with (
        tempfile.TemporaryDirectory(prefix="meshcore-bench-", dir=args.workdir) as workdir,
        MeshSandbox() as sandbox,
    ):
        print(f"mesh-sandbox on {sandbox.url}; payloads in {workdir}", flush=True)
        for size in sizes:
            for kind in kinds:
                payload = Path(workdir) / f"payload-{kind}-{size}.bin"
                started = time.perf_counter()
                digest = write_payload(payload, kind, size * MiB)
                print(
                    f"generated {size} MiB {kind} in {time.perf_counter() - started:.1f}s",
                    flush=True,
                )
                chunk = args.chunk_mib * MiB
                for client in clients:
                    runs = [
                        _measure(sandbox, client, payload, digest, size, kind, chunk)
                        for _ in range(max(1, args.repeat))
                    ]
                    result = _combine(runs)
                    print(_row(result), flush=True)
                    results.append(result)
                payload.unlink()
    print()
    print(format_table(results))
    if not args.no_save:
        _save(results, args)
    return 0 if all(result.verified for result in results) else 1


def _combine(runs: list[Result]) -> Result:
    """Median speeds, worst memory, and verified only if every run was."""
    return replace(
        runs[0],
        send_mib_s=statistics.median(run.send_mib_s for run in runs),
        receive_mib_s=statistics.median(run.receive_mib_s for run in runs),
        peak_rss_mib=max(run.peak_rss_mib for run in runs),
        send_rss_mib=max(run.send_rss_mib for run in runs),
        receive_rss_mib=max(run.receive_rss_mib for run in runs),
        verified=all(run.verified for run in runs),
    )


def _measure(
    sandbox, client: str, payload: Path, digest: str, size: int, kind: str, chunk: int
) -> Result:
    sandbox.reset()
    received = payload.with_suffix(f".{client}.received")
    sent = _child("send", client, sandbox.url, payload, chunk_size=chunk)
    got = _child("receive", client, sandbox.url, received, message_id=sent["message_id"])
    verified = sha256_file(received) == digest
    received.unlink()
    sandbox.reset()
    send_rss, receive_rss = sent["peak_rss_kib"] / 1024, got["peak_rss_kib"] / 1024
    return Result(
        size_mib=size,
        kind=kind,
        client=client,
        send_mib_s=size / sent["seconds"],
        receive_mib_s=size / got["seconds"],
        peak_rss_mib=max(send_rss, receive_rss),
        send_rss_mib=send_rss,
        receive_rss_mib=receive_rss,
        baseline_rss_mib=max(sent["baseline_rss_kib"], got["baseline_rss_kib"]) / 1024,
        verified=verified,
    )


def _child(phase: str, client: str, url: str, path: Path, **options) -> dict:
    # Flush dirty pages first (untimed), so one run's file writes do not slow the next one down.
    os.sync()
    command = [
        sys.executable,
        "-m",
        "bench.transfer_client",
        phase,
        "--client",
        client,
        "--url",
        url,
    ]
    command += ["--file", str(path)]
    for name, value in options.items():
        command += [f"--{name.replace('_', '-')}", str(value)]
    root = Path(__file__).resolve().parent.parent
    output = subprocess.run(command, check=True, capture_output=True, text=True, cwd=root)
    return json.loads(output.stdout.strip().splitlines()[-1])


def _row(result: Result) -> str:
    status = "ok" if result.verified else "SHA256 MISMATCH"
    return (
        f"  {result.size_mib:>5} MiB {result.kind:<6} {result.client:<11} send {result.send_mib_s:7.1f} MiB/s"
        f"  receive {result.receive_mib_s:7.1f} MiB/s  peak RSS {result.peak_rss_mib:6.1f} MiB  {status}"
    )


def format_table(results: list[Result]) -> str:
    """The comparison table, with meshcore/mesh-client ratios per size and kind."""
    header = (
        f"{'size':>9} {'data':<7} {'client':<12} {'send MiB/s':>10} {'recv MiB/s':>10} "
        f"{'peak RSS MiB':>12}  {'sha256':<6}"
    )
    lines = [header, "-" * len(header)]
    by_case: dict[tuple[int, str], dict[str, Result]] = {}
    for result in results:
        by_case.setdefault((result.size_mib, result.kind), {})[result.client] = result
        lines.append(
            f"{result.size_mib:>5} MiB {result.kind:<7} {result.client:<12} {result.send_mib_s:>10.1f} "
            f"{result.receive_mib_s:>10.1f} {result.peak_rss_mib:>12.1f}  {'ok' if result.verified else 'BAD':<6}"
        )
        pair = by_case[(result.size_mib, result.kind)]
        if len(pair) == 2 and result.client == list(pair)[-1]:
            ours, theirs = pair.get("meshcore"), pair.get("mesh-client")
            if ours and theirs:
                lines.append(
                    f"{'':>9} {'':<7} {'ratio':<12} {ours.send_mib_s / theirs.send_mib_s:>9.2f}x "
                    f"{ours.receive_mib_s / theirs.receive_mib_s:>9.2f}x "
                    f"{ours.peak_rss_mib / theirs.peak_rss_mib:>11.2f}x"
                )
    lines.append("ratio = meshcore / mesh-client (higher is better for speed, lower for RSS)")
    return "\n".join(lines)


def _save(results: list[Result], args: argparse.Namespace) -> None:
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"transfer-{time.strftime('%Y%m%d-%H%M%S')}.json"
    document = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "chunk_mib": args.chunk_mib,
        "results": [asdict(result) for result in results],
    }
    path.write_text(json.dumps(document, indent=2))
    print(f"results saved to {path}")
