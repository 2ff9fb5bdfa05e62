"""One measured phase of the at-rest benchmark, in its own process so its peak RSS is its own.

    python -m bench.at_rest_child store   --file SOURCE            (payload API write, no network)
    python -m bench.at_rest_child read    --name NAME              (payload API read, no network)
    python -m bench.at_rest_child send    --url URL --name NAME    (outbox path: store -> MESH)
    python -m bench.at_rest_child receive --url URL --message-id ID (inbox path: MESH -> store)

PAYLOAD_ENCRYPTION in the environment chooses plain or encrypted. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import time

SENDER, RECIPIENT = "X26ABC1", "X26ABC2"
PASSWORD, SHARED_KEY = "password", "TestKey"  # the sandbox's public test values
BLOCK = 1024 * 1024


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    return 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("phase", choices=["store", "read", "send", "receive"])
    parser.add_argument("--file")
    parser.add_argument("--name")
    parser.add_argument("--url")
    parser.add_argument("--message-id")
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()
    from meshcore import MeshClient
    from portal.lib import payloads

    baseline = _status_kib("VmRSS")
    out: dict = {}
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    if args.phase == "store":
        with open(args.file, "rb") as source:
            stored = payloads.store_stream(source, "out")
        out = {"name": stored.name, "sha256": stored.sha256}
    elif args.phase == "read":
        digest = hashlib.sha256()
        with payloads.open_payload(args.name) as handle:
            while block := handle.read(BLOCK):
                digest.update(block)
        out = {"sha256": digest.hexdigest()}
    elif args.phase == "send":
        with MeshClient(args.url, SENDER, PASSWORD, SHARED_KEY) as client:
            with payloads.open_payload(args.name) as source:
                out = {"message_id": client.send(RECIPIENT, "BENCH_AT_REST", source)}
    else:
        with MeshClient(args.url, RECIPIENT, PASSWORD, SHARED_KEY) as client:
            with payloads.durable_writer("in") as (writer, result):
                client.download(args.message_id, writer)
            client.acknowledge(args.message_id)
        out = {"name": result[0].name, "sha256": result[0].sha256}
    out["seconds"] = time.perf_counter() - started
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    out["cpu_seconds"] = (cpu.ru_utime - cpu_before.ru_utime) + (cpu.ru_stime - cpu_before.ru_stime)
    out["peak_rss_kib"] = _status_kib("VmHWM")
    out["baseline_rss_kib"] = baseline
    print(json.dumps(out))


if __name__ == "__main__":
    main()
