"""Client-side checks, so bad input fails with a clear MeshValidationError before any HTTP.

The limits are the MESH header dictionary's (mesh-protocol.md section 5.1). MESH's own answer to
a malformed header (TRANSFER/06) does not say which field was wrong, so we say it here.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from .errors import MeshValidationError

MiB = 1024 * 1024
# What the portal has long configured (MESH_CHUNK_SIZE). Not meshcore's default any more: with no
# chunk_size, meshcore sends one request whenever the compressed message fits, and otherwise cuts
# the largest chunks that fit (meshcore.sizing).
DEFAULT_CHUNK_SIZE = 20 * MiB
# Live MESH expects every chunk but the last to be at least 5 MB.
MIN_LIVE_CHUNK_SIZE = 5 * MiB
# The largest request body MESH accepts, *after* compression (mesh-protocol.md 7.1): 20 MB on the
# internet endpoints (all current ones), 100 MB over HSCN.
DEFAULT_MAX_REQUEST_BYTES = 20_000_000
HSCN_MAX_REQUEST_BYTES = 100_000_000
MAX_REQUEST_BODY = HSCN_MAX_REQUEST_BYTES
# Small limits are for tests; below this a chunk would be mostly gzip framing.
MIN_REQUEST_BYTES = 1_000
MAX_CHUNK_SIZE = 99_000_000
MIN_PAGE_SIZE, MAX_PAGE_SIZE = 10, 5000

_MAILBOX_RE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{2,31}$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_URL_RE = re.compile(r"^\s*https?://", re.I)
_CHECKSUM_RE = re.compile(r"^[A-Za-z0-9\s:/-]+$")

# Header name -> maximum length, from the MESH header dictionary.
HEADER_LIMITS = {
    "mex-To": 100,
    "mex-WorkflowID": 300,
    "mex-LocalID": 300,
    "mex-Subject": 500,
    "mex-FileName": 300,
    "mex-Content-Checksum": 100,
    "mex-Content-Type": 100,
    "mex-PartnerID": 500,
}


def mailbox_id(value: object, what: str = "mailbox id") -> str:
    """Upper-case and check a mailbox id (letters, digits, '-' or '_', 3 to 32 characters)."""
    if not isinstance(value, str):
        raise MeshValidationError(f"{what} must be a string, got {type(value).__name__}")
    normalised = value.strip().upper()
    if not _MAILBOX_RE.match(normalised):
        raise MeshValidationError(
            f"{what} {value!r} is malformed: expected 3-32 letters, digits, '-' or '_' (e.g. X26ABC1)"
        )
    return normalised


# Demographic addressing (mex-To, for the workflows MESH routes by patient): an NHS number,
# optionally with the date of birth (YYYYMMDD) and the surname, joined by underscores.
_DEMOGRAPHIC_RE = re.compile(r"^(\d{10})(?:_(\d{8}))?(?:_([A-Za-z][A-Za-z '\-]{0,60}))?$")


def nhs_number_valid(digits: str) -> bool:
    """The NHS number's modulus 11 check: ten digits, the last a check digit (10 is never valid)."""
    if len(digits) != 10 or not digits.isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(digits[:9], range(10, 1, -1), strict=True))
    check = 11 - total % 11
    check = 0 if check == 11 else check
    return check != 10 and check == int(digits[9])


def demographic_address(value: object) -> str:
    """A demographic mex-To: checked, never upper-cased (the surname's case is the sender's)."""
    if not isinstance(value, str):
        raise MeshValidationError(
            f"demographic address must be a string, got {type(value).__name__}"
        )
    text = value.strip()
    match = _DEMOGRAPHIC_RE.match(text)
    if len(text) > HEADER_LIMITS["mex-To"] or match is None:
        raise MeshValidationError(
            "mex-To is not a demographic address: expected a 10-digit NHS number, optionally "
            "followed by _YYYYMMDD (date of birth) and _Surname, at most 100 characters"
        )
    if not nhs_number_valid(match.group(1)):
        raise MeshValidationError("mex-To holds an NHS number whose check digit is wrong")
    return text


def message_id(value: object) -> str:
    """Message ids are opaque, but must be a non-empty single line to go into a URL path."""
    if not isinstance(value, str) or not value.strip():
        raise MeshValidationError(f"message id must be a non-empty string, got {value!r}")
    if _CONTROL_RE.search(value) or "/" in value or len(value) > 100:
        raise MeshValidationError(f"message id {value!r} is malformed")
    return value.strip()


def header_value(name: str, value: object) -> str:
    """Check one mex header value against MESH's rules; returns it as a string."""
    text = value if isinstance(value, str) else str(value)
    if not text.strip():
        raise MeshValidationError(f"{name} must not be empty")
    if _CONTROL_RE.search(text):
        raise MeshValidationError(
            f"{name} must not contain control characters (line breaks, tabs...)"
        )
    if _URL_RE.match(text):
        raise MeshValidationError(f"{name} must not start with http:// or https://")
    if not text.isascii():
        raise MeshValidationError(f"{name} must be ASCII: {text!r}")
    limit = HEADER_LIMITS.get(name)
    if limit and len(text) > limit:
        raise MeshValidationError(f"{name} is {len(text)} characters long; MESH allows {limit}")
    if name == "mex-Content-Checksum" and not _CHECKSUM_RE.match(text):
        raise MeshValidationError(
            f"{name} may only hold letters, digits, spaces and ':-/' (e.g. 'sha256:ab12...'): {text!r}"
        )
    return text


def chunk_size(value: object) -> int:
    """Raw bytes per chunk. Below 5 MiB is allowed (tests) but only when the caller asks for it."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise MeshValidationError(f"chunk_size must be an int, got {type(value).__name__}")
    if not 1 <= value <= MAX_CHUNK_SIZE:
        raise MeshValidationError(
            f"chunk_size {value} is out of range: 1 to {MAX_CHUNK_SIZE} bytes (leave it unset to "
            f"let meshcore choose; live MESH wants at least {MIN_LIVE_CHUNK_SIZE})"
        )
    return value


def max_request_bytes(value: object) -> int:
    """The largest request body to send, in bytes after compression."""
    return _int_within(
        "max_request_bytes",
        value,
        MIN_REQUEST_BYTES,
        HSCN_MAX_REQUEST_BYTES,
        f" (MESH takes {DEFAULT_MAX_REQUEST_BYTES:,} bytes per request on the internet, "
        f"{HSCN_MAX_REQUEST_BYTES:,} over HSCN)",
    )


def page_size(value: object) -> int:
    return _int_within("page_size", value, MIN_PAGE_SIZE, MAX_PAGE_SIZE)


def _int_within(name: str, value: object, low: int, high: int, hint: str = "") -> int:
    # bool is an int to Python, never a size to us.
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise MeshValidationError(
            f"{name} must be an int from {low:,} to {high:,}{hint}, got {value!r}"
        )
    return value


def workflow_filter(value: str | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not 2 <= len(value) <= 255 or _CONTROL_RE.search(value):
        raise MeshValidationError(
            f"workflow_filter must be 2-255 printable characters, got {value!r}"
        )
    return value


def base_url(value: object) -> str:
    if not isinstance(value, str):
        raise MeshValidationError(
            "base_url must be a string such as https://msg.intspineservices.nhs.uk"
        )
    parts = urlsplit(value.strip())
    if parts.scheme not in {"http", "https"} or not parts.hostname or parts.query or parts.fragment:
        raise MeshValidationError(f"base_url {value!r} must be http(s)://host[:port] with no query")
    return value.strip().rstrip("/")


def secret(value: object, what: str) -> bytes:
    """Password and shared key: required, no defaults (a default key silently mis-authenticates)."""
    if isinstance(value, str):
        value = value.encode("utf-8")
    if not isinstance(value, bytes) or not value:
        raise MeshValidationError(f"{what} is required (a non-empty str or bytes)")
    return value


def ods_code(value: object) -> str:
    if not isinstance(value, str) or not re.match(r"^[A-Z0-9]{3,10}$", value.strip().upper()):
        raise MeshValidationError(
            f"ODS code {value!r} is malformed: expected 3-10 letters or digits"
        )
    return value.strip().upper()


def workflow_id(value: object) -> str:
    return header_value("mex-WorkflowID", value)


def positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise MeshValidationError(f"{name} must be a positive int, got {value!r}")
    return value


def optional_seconds(value: object, name: str) -> float | None:
    """A positive number (seconds, or bytes a second), or None for no bound."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise MeshValidationError(f"{name} must be a positive number or None, got {value!r}")
    return float(value)
