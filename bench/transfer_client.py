"""One measured transfer phase, run in its own process so its peak RSS is the client's alone.

    python -m bench.transfer_client send    --client meshcore --url URL --file PAYLOAD
    python -m bench.transfer_client receive --client meshcore --url URL --file OUT --message-id ID

Prints one JSON line: seconds, peak RSS (KiB, VmHWM), RSS after imports, message id, and for a
send the number of requests it took.

meshcore sends as it does for NeoMesh: one request whenever the gzipped message fits
``--max-request-bytes``, else chunks of the largest raw size that always fits. mesh-client cuts
by raw size only, so it gets ``--chunk-size`` from the driver: the whole file when meshcore sends
it in one request, meshcore's raw chunk size when meshcore chunks it. Both then send the same
requests, cut at the same raw offsets.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import time

SENDER, RECIPIENT = "X26ABC1", "X26ABC2"
PASSWORD, SHARED_KEY = "password", "TestKey"  # the sandbox's public test values
WORKFLOW = "BENCH_TRANSFER"
READ_SIZE = 1024 * 1024


def _status_kib(field: str) -> int:
    """A memory figure of this process from /proc/self/status, in KiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    return 0


def meshcore_send(url: str, path: str, chunk_size: int, max_request_bytes: int) -> tuple[str, int]:
    from meshcore import MeshClient

    totals = []
    with MeshClient(
        url, SENDER, PASSWORD, SHARED_KEY, max_request_bytes=max_request_bytes
    ) as client:
        with open(path, "rb") as source:
            message_id = client.send(
                RECIPIENT,
                WORKFLOW,
                source,
                content_type="text/csv",
                on_progress=lambda chunk, total, mid: totals.append(total),
            )
    return message_id, totals[-1]


def meshcore_receive(url: str, path: str, message_id: str, acknowledge: bool) -> None:
    from meshcore import MeshClient

    with MeshClient(url, RECIPIENT, PASSWORD, SHARED_KEY) as client:
        with open(path, "wb") as into:
            client.download(message_id, into)
        if acknowledge:
            client.acknowledge(message_id)


def mesh_client_send(
    url: str, path: str, chunk_size: int, max_request_bytes: int
) -> tuple[str, int]:
    import mesh_client

    with mesh_client.MeshClient(
        url,
        SENDER,
        PASSWORD,
        shared_key=SHARED_KEY.encode(),
        max_chunk_size=chunk_size,
        transparent_compress=True,
    ) as client:
        with open(path, "rb") as source:
            message_id = client.send_message(
                RECIPIENT, source, workflow_id=WORKFLOW, content_type="text/csv"
            )
    return message_id, max(1, -(-os.path.getsize(path) // chunk_size))


def mesh_client_receive(url: str, path: str, message_id: str, acknowledge: bool) -> None:
    import mesh_client

    with mesh_client.MeshClient(url, RECIPIENT, PASSWORD, shared_key=SHARED_KEY.encode()) as client:
        message = client.retrieve_message(message_id)
        with open(path, "wb") as into:
            shutil.copyfileobj(message, into, READ_SIZE)
        message.close()
        if acknowledge:
            client.acknowledge_message(message_id)


CLIENTS = {
    "meshcore": (meshcore_send, meshcore_receive),
    "mesh-client": (mesh_client_send, mesh_client_receive),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("phase", choices=["send", "receive"])
    parser.add_argument("--client", choices=sorted(CLIENTS), required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--file", required=True)
    parser.add_argument("--chunk-size", type=int, default=20 * 1024 * 1024, help="mesh-client's")
    parser.add_argument("--max-request-bytes", type=int, default=20_000_000, help="meshcore's")
    parser.add_argument("--message-id")
    parser.add_argument("--no-ack", action="store_true", help="receive without acknowledging")
    args = parser.parse_args()

    send, receive = CLIENTS[args.client]
    # Import the client before measuring, so the baseline RSS includes its libraries.
    __import__("meshcore" if args.client == "meshcore" else "mesh_client")
    baseline = _status_kib("VmRSS")
    started = time.perf_counter()
    message_id, requests = args.message_id, None
    if args.phase == "send":
        message_id, requests = send(args.url, args.file, args.chunk_size, args.max_request_bytes)
    else:
        receive(args.url, args.file, args.message_id, not args.no_ack)
    seconds = time.perf_counter() - started
    # VmHWM is the peak RSS of this process image. getrusage's ru_maxrss is not used for the
    # figure: Linux carries the parent's high-water mark across fork+exec into it, so every
    # child would report at least the benchmark driver's own peak. Both are recorded.
    result = {
        "seconds": seconds,
        "peak_rss_kib": _status_kib("VmHWM"),
        "ru_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "baseline_rss_kib": baseline,
        "message_id": message_id,
        "requests": requests,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
