"""Transfer benchmark: meshcore against the official mesh-client, side by side, one sandbox.

For every size and data kind, a payload file is generated (streamed, never in memory), then each
client sends it through a local mesh-sandbox and receives it back into a file, each phase in its
own child process (bench/transfer_client.py) so peak RSS is the client's own. The received file's
sha256 must equal the sent file's.

Like with like: both clients gzip, and both send the same requests. meshcore decides by itself
(one request whenever the gzipped message fits the 20 MB request limit, else chunks of the largest
raw size that always fits, 19,997,687 bytes); mesh-client is told the same layout (the whole file
as one chunk, or meshcore's raw chunk size), which the driver works out untimed with
``meshcore.needs_chunking``. meshcore's timed send includes the compression it does to decide
(kept in a spool and sent from there, not done twice); mesh-client, told the answer, skips it.

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
    requests: int
    send_mib_s: float
    receive_mib_s: float
    receive_same_mib_s: float
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
        "--max-request-bytes",
        type=int,
        default=20_000_000,
        help="MESH's per-request limit after gzip (default 20,000,000: internet; 100,000,000: HSCN)",
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
                layout = _layout(payload, args.max_request_bytes)
                runs = [
                    _measure_case(sandbox, clients, payload, digest, size, kind, layout)
                    for _ in range(max(1, args.repeat))
                ]
                for client in clients:
                    result = _combine([run[client] for run in runs])
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
        receive_same_mib_s=statistics.median(run.receive_same_mib_s for run in runs),
        peak_rss_mib=max(run.peak_rss_mib for run in runs),
        send_rss_mib=max(run.send_rss_mib for run in runs),
        receive_rss_mib=max(run.receive_rss_mib for run in runs),
        verified=all(run.verified for run in runs),
    )


def _layout(payload: Path, max_request_bytes: int) -> dict[str, int]:
    """The requests meshcore will make, for mesh-client to make the same (see the docstring)."""
    from meshcore import max_chunk_size, needs_chunking

    chunked = needs_chunking(payload, max_request_bytes=max_request_bytes)
    chunk_size = max_chunk_size(max_request_bytes) if chunked else payload.stat().st_size
    return {"chunk_size": chunk_size, "max_request_bytes": max_request_bytes}


def _measure_case(
    sandbox,
    clients: list[str],
    payload: Path,
    digest: str,
    size: int,
    kind: str,
    layout: dict[str, int],
) -> dict[str, Result]:
    """Every client sends; each receives the message it sent, and (without acknowledging)
    the one mesh-client sent, so receivers are also compared on identical bytes."""
    sandbox.reset()
    sent = {client: _child("send", client, sandbox.url, payload, **layout) for client in clients}
    if len({result["requests"] for result in sent.values()}) > 1:
        raise RuntimeError(f"the clients sent different numbers of requests: {sent}")
    reference = sent.get("mesh-client")
    # An untimed read first: whichever receiver went first after the uploads was measured ~2x slow
    # at 1 GiB (the sandbox's state after storing the uploads), whatever the client.
    warmup = payload.with_suffix(".warmup")
    first = reference or next(iter(sent.values()))
    _child("receive", clients[0], sandbox.url, warmup, message_id=first["message_id"], no_ack=True)
    warmup.unlink(missing_ok=True)
    results = {}
    for client in clients:
        received = payload.with_suffix(f".{client}.received")
        same = None
        if reference and client != "mesh-client":
            same = _receive(
                client, sandbox.url, received, reference["message_id"], digest, no_ack=True
            )
        own = _receive(client, sandbox.url, received, sent[client]["message_id"], digest)
        same = same or own
        send_rss, receive_rss = sent[client]["peak_rss_kib"] / 1024, own["peak_rss_kib"] / 1024
        results[client] = Result(
            size_mib=size,
            kind=kind,
            client=client,
            requests=sent[client]["requests"],
            send_mib_s=size / sent[client]["seconds"],
            receive_mib_s=size / own["seconds"],
            receive_same_mib_s=size / same["seconds"],
            peak_rss_mib=max(send_rss, receive_rss, same["peak_rss_kib"] / 1024),
            send_rss_mib=send_rss,
            receive_rss_mib=receive_rss,
            baseline_rss_mib=max(sent[client]["baseline_rss_kib"], own["baseline_rss_kib"]) / 1024,
            verified=own["verified"] and same["verified"],
        )
    sandbox.reset()
    return results


def _receive(client: str, url: str, path: Path, message_id: str, digest: str, **options) -> dict:
    got = _child("receive", client, url, path, message_id=message_id, **options)
    got["verified"] = sha256_file(path) == digest
    path.unlink()
    return got


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
        if value is True:
            command.append(f"--{name.replace('_', '-')}")
        else:
            command += [f"--{name.replace('_', '-')}", str(value)]
    root = Path(__file__).resolve().parent.parent
    output = subprocess.run(command, check=True, capture_output=True, text=True, cwd=root)
    return json.loads(output.stdout.strip().splitlines()[-1])


def _row(result: Result) -> str:
    status = "ok" if result.verified else "SHA256 MISMATCH"
    return (
        f"  {result.size_mib:>5} MiB {result.kind:<6} {result.client:<11}"
        f" {result.requests:>3} requests, send {result.send_mib_s:7.1f} MiB/s  receive {result.receive_mib_s:7.1f} MiB/s"
        f" (same message {result.receive_same_mib_s:7.1f})  peak RSS {result.peak_rss_mib:6.1f} MiB"
        f"  {status}"
    )


def format_table(results: list[Result]) -> str:
    """The comparison table, with meshcore/mesh-client ratios per size and kind."""
    columns = ("send MiB/s", "recv MiB/s", "recv* MiB/s", "peak RSS MiB")
    header = f"{'size':>9} {'data':<7} {'client':<12} {'requests':>8} " + " ".join(
        f"{c:>12}" for c in columns
    )
    lines = [header + "  sha256", "-" * (len(header) + 8)]
    by_case: dict[tuple[int, str], dict[str, Result]] = {}
    for result in results:
        by_case.setdefault((result.size_mib, result.kind), {})[result.client] = result
        figures = (
            result.send_mib_s,
            result.receive_mib_s,
            result.receive_same_mib_s,
            result.peak_rss_mib,
        )
        lines.append(
            f"{result.size_mib:>5} MiB {result.kind:<7} {result.client:<12} {result.requests:>8} "
            + " ".join(f"{figure:>12.1f}" for figure in figures)
            + f"  {'ok' if result.verified else 'BAD'}"
        )
        pair = by_case[(result.size_mib, result.kind)]
        ours, theirs = pair.get("meshcore"), pair.get("mesh-client")
        if ours and theirs and result.client == list(pair)[-1]:
            ratios = (
                ours.send_mib_s / theirs.send_mib_s,
                ours.receive_mib_s / theirs.receive_mib_s,
                ours.receive_same_mib_s / theirs.receive_same_mib_s,
                ours.peak_rss_mib / theirs.peak_rss_mib,
            )
            lines.append(
                f"{'':>9} {'':<7} {'ratio':<12} {'':>8} "
                + " ".join(f"{ratio:>11.2f}x" for ratio in ratios)
            )
    lines.append("ratio = meshcore / mesh-client (higher is better for speed, lower for RSS)")
    lines.append(
        "recv = receiving the message the client sent itself; recv* = receiving the very message "
        "mesh-client sent (same bytes for both receivers)"
    )
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
        "max_request_bytes": args.max_request_bytes,
        "results": [asdict(result) for result in results],
    }
    path.write_text(json.dumps(document, indent=2))
    print(f"results saved to {path}")
