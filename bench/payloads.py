"""Benchmark payloads, written to a file in blocks (never held whole in memory).

* ``csv``: realistic CSV-like text, the kind of extract MESH carries (one row per appointment:
  ids, NHS-number-like digits, names, dates, codes, free-text outcome). Every row differs, so gzip
  sees realistic redundancy, not a repeated block.
* ``random``: incompressible bytes (like encrypted or already-compressed payloads).
"""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

MiB = 1024 * 1024
KINDS = ("csv", "random")

_SURNAMES = (
    "SMITH JONES TAYLOR BROWN WILLIAMS WILSON JOHNSON DAVIES PATEL WRIGHT KHAN EVANS".split()
)
_FORENAMES = "OLIVER AMELIA GEORGE ISLA HARRY AVA NOAH MIA JACK PRIYA MOHAMMED GRACE".split()
_SPECIALTIES = [
    "Cardiology",
    "Dermatology",
    "General Surgery",
    "Ophthalmology",
    "Trauma & Orthopaedics",
]
_OUTCOMES = [
    "Discharged to GP",
    "Follow-up appointment booked",
    "Referred to specialist clinic",
    "Did not attend",
    "Treatment completed, no further action",
]
_HEADER = (
    "record_id,nhs_number,surname,forename,date_of_birth,sex,postcode,gp_practice,"
    "appointment_date,specialty,priority,clinician,outcome\n"
)


def _csv_rows(rng: random.Random, count: int) -> list[str]:
    """Row bodies (everything after record_id). A pool of 100k rows is ~12 MB, far beyond
    gzip's 32 KiB window, so drawing rows from it compresses like fresh data, only faster."""
    rows = []
    for _ in range(count):
        rows.append(
            f"{rng.randrange(4000000000, 4999999999)},{rng.choice(_SURNAMES)},"
            f"{rng.choice(_FORENAMES)},{rng.randrange(1930, 2024)}-{rng.randrange(1, 13):02d}-"
            f"{rng.randrange(1, 29):02d},{rng.choice('MF')},LS{rng.randrange(1, 30)} "
            f"{rng.randrange(1, 10)}{rng.choice('ABDEFGHJ')}{rng.choice('LNPQRSTUW')},"
            f"B{rng.randrange(82001, 82099)},2026-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d},"
            f"{rng.choice(_SPECIALTIES)},{rng.choice(('routine', 'urgent', 'two-week-wait'))},"
            f"C{rng.randrange(1000, 1100)},{rng.choice(_OUTCOMES)}\n"
        )
    return rows


def _csv_block(rng: random.Random, pool: list[str], first_id: int, rows: int) -> bytes:
    picks = rng.choices(pool, k=rows)
    return "".join(f"{first_id + n},{row}" for n, row in enumerate(picks)).encode("ascii")


def write_payload(path: Path, kind: str, size: int, seed: int = 2026) -> str:
    """Write exactly ``size`` bytes of ``kind`` to ``path``; returns the sha256 hex digest."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    rng = random.Random(seed)
    digest = hashlib.sha256()
    written = 0
    next_id = 1
    pool = _csv_rows(rng, 100_000) if kind == "csv" else []
    with open(path, "wb") as out:
        if kind == "csv":
            block = _HEADER.encode()
            out.write(block[:size])
            digest.update(block[:size])
            written = len(block[:size])
        while written < size:
            if kind == "csv":
                block = _csv_block(rng, pool, next_id, 8000)
                next_id += 8000
            else:
                block = os.urandom(4 * MiB)
            block = block[: size - written]
            out.write(block)
            digest.update(block)
            written += len(block)
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        for block in iter(lambda: source.read(4 * MiB), b""):
            digest.update(block)
    return digest.hexdigest()
