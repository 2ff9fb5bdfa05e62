"""meshcore: a streaming, pure-Python client for the NHS MESH API v2.

Never imports Django (a test enforces it); the portal calls it from its services and tasks.
See meshcore/README.md for usage, the retry and duplicate-send policy, and TLS notes.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .client import DEFAULT_TIMEOUT, MeshClient
from .errors import (
    MeshAuthenticationError,
    MeshCertificateError,
    MeshChunkingNotAllowed,
    MeshChunkLockedError,
    MeshDeadlineExceeded,
    MeshError,
    MeshGoneError,
    MeshNotFoundError,
    MeshPayloadTooLarge,
    MeshPayloadTypeError,
    MeshProtocolError,
    MeshRateLimitedError,
    MeshSendOutcomeUnknown,
    MeshSendRejectedError,
    MeshTLSError,
    MeshTransientError,
    MeshValidationError,
)
from .exchanges import Exchange
from .limits import DownloadLimits
from .models import DATA, REPORT, HandshakeResult, MailboxRef, MessageInfo, TrackingStatus
from .sizing import max_chunk_size, needs_chunking
from .validation import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_MAX_REQUEST_BYTES,
    HSCN_MAX_REQUEST_BYTES,
    MAX_CHUNK_SIZE,
    MIN_LIVE_CHUNK_SIZE,
    nhs_number_valid,
)

__all__ = [
    "DATA",
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_MAX_REQUEST_BYTES",
    "DEFAULT_TIMEOUT",
    "HSCN_MAX_REQUEST_BYTES",
    "MAX_CHUNK_SIZE",
    "MIN_LIVE_CHUNK_SIZE",
    "REPORT",
    "DownloadLimits",
    "Exchange",
    "HandshakeResult",
    "MailboxRef",
    "MeshAuthenticationError",
    "MeshCertificateError",
    "MeshChunkLockedError",
    "MeshChunkingNotAllowed",
    "MeshClient",
    "MeshDeadlineExceeded",
    "MeshError",
    "MeshGoneError",
    "MeshNotFoundError",
    "MeshPayloadTooLarge",
    "MeshPayloadTypeError",
    "MeshProtocolError",
    "MeshRateLimitedError",
    "MeshSendOutcomeUnknown",
    "MeshSendRejectedError",
    "MeshTLSError",
    "MeshTransientError",
    "MeshValidationError",
    "MessageInfo",
    "TrackingStatus",
    "__version__",
    "max_chunk_size",
    "needs_chunking",
    "nhs_number_valid",
]
