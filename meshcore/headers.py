"""Request headers: client identification, and the metadata headers of a send."""

from __future__ import annotations

import platform

from . import validation
from .errors import MeshValidationError

ACCEPT_V2 = "application/vnd.mesh.v2+json"
OCTET_STREAM = "application/octet-stream"


def _version() -> str:
    from . import __version__

    return __version__


def _clean(text: str) -> str:
    # Header values must be one printable ASCII line, whatever the OS reports.
    return "".join(ch if " " <= ch <= "~" else " " for ch in text).strip() or "unknown"


def _application_name(name: str | None) -> str | None:
    if name is None:
        return None
    if not isinstance(name, str) or not name.strip() or any(ch in name for ch in ";\r\n"):
        raise MeshValidationError(
            f"application_name must be a short name without ';', got {name!r}"
        )
    return _clean(name)


def user_agent(application_name: str | None = None) -> str:
    """``[app;]meshcore;<version>;N/A;<machine>;<OS>;<release> <build>`` (mesh-client's shape)."""
    fields = [
        "meshcore",
        _version(),
        "N/A",
        platform.machine() or "unknown",
        platform.system() or "unknown",
        f"{platform.release()} {platform.version()}",
    ]
    app = _application_name(application_name)
    return _clean(";".join([app, *fields] if app else fields))


def handshake_headers(application_name: str | None = None) -> dict[str, str]:
    """The client description MESH asks for on the handshake (mex-ClientVersion etc.)."""
    app = _application_name(application_name)
    client = f"meshcore=={_version()}"
    return {
        "mex-ClientVersion": _clean(f"{app};{client}" if app else client),
        "mex-OSName": _clean(platform.system()),
        "mex-OSVersion": _clean(f"{platform.release()} {platform.version()}"),
        "mex-OSArchitecture": _clean(platform.machine()),
        "mex-JavaVersion": "N/A",
    }


def _yes_no(value: bool) -> str:
    return "Y" if value else "N"


def send_metadata(
    *,
    to: str,
    workflow_id: str,
    filename: str | None = None,
    local_id: str | None = None,
    subject: str | None = None,
    content_type: str | None = None,
    checksum: str | None = None,
    partner_id: str | None = None,
    encrypted: bool | None = None,
    content_compressed: bool | None = None,
    demographic: bool = False,
) -> dict[str, str]:
    """Validated metadata headers of the first POST; every rule is checked before any HTTP.

    `demographic`: `to` is a demographic address (NHS number form), kept as given, not a mailbox.
    """
    headers = {
        "mex-To": validation.demographic_address(to)
        if demographic
        else validation.mailbox_id(to, "recipient mailbox id"),
        "mex-WorkflowID": validation.workflow_id(workflow_id),
    }
    optional = {
        "mex-FileName": filename,
        "mex-LocalID": local_id,
        "mex-Subject": subject,
        "mex-Content-Type": content_type,
        "mex-Content-Checksum": checksum,
        "mex-PartnerID": partner_id,
    }
    for name, value in optional.items():
        if value is not None:
            headers[name] = validation.header_value(name, value)
    if encrypted is not None:
        headers["mex-Content-Encrypted"] = _yes_no(encrypted)
    if content_compressed is not None:
        headers["mex-Content-Compressed"] = _yes_no(content_compressed)
    return headers


def first_chunk_headers(
    metadata: dict[str, str], total_chunks: int, compress: bool
) -> dict[str, str]:
    """A single-chunk message keeps its media type in Content-Type; a chunked one says octet-stream
    there (each request body is just a slice) and carries the real type in mex-Content-Type."""
    headers = dict(metadata)
    content_type = metadata.get("mex-Content-Type")
    headers["Content-Type"] = content_type if content_type and total_chunks == 1 else OCTET_STREAM
    headers["mex-Chunk-Range"] = f"1:{total_chunks}"
    if compress:
        headers["Content-Encoding"] = "gzip"
    return headers


def later_chunk_headers(chunk_number: int, total_chunks: int, compress: bool) -> dict[str, str]:
    headers = {"Content-Type": OCTET_STREAM, "mex-Chunk-Range": f"{chunk_number}:{total_chunks}"}
    if compress:
        # Must match the first chunk's Content-Encoding, or MESH rejects the chunk (417).
        headers["Content-Encoding"] = "gzip"
    return headers
