"""The destination kinds: each delivers one stored message and says where, or raises
`DeliveryFailed` with the reason in plain English. Each is safe to run again after a crash: what
it wrote before is recognised by the MESH message id (or the payload's sha256) and never written twice.
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import json
import os
import re
import string
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from django.utils import timezone

from portal.lib import payloads

from .links import payload_link
from .models import Destination, DestinationKind

CHUNK = 1024 * 1024
DEFAULT_TEMPLATE = "{workflow}/{date}/{filename}"
TEMPLATE_FIELDS = {"workflow", "date", "filename", "mesh_id", "mailbox", "sender", "local_id"}
# Names Windows (and so SMB mounts) refuse, whatever the extension.
RESERVED = {
    "CON",
    "PRN",
    "AUX",
    "NUL",
    *(f"COM{i}" for i in range(10)),
    *(f"LPT{i}" for i in range(10)),
}
_UNSAFE = re.compile(r"[\x00-\x1f\x7f<>:\"/\\|?*]")
MAX_COMPONENT = 200


class DeliveryFailed(Exception):
    """A delivery failed; the text says why, for a person."""


def metadata(message) -> dict[str, str]:
    """The MESH metadata of a message, as text (the sidecar, object metadata, the webhook); a
    report adds MESH's status and the id of the message it is about."""
    if message.message_type == "REPORT":
        return _data_metadata(message) | {
            "mesh_status_code": message.mesh_status_code,
            "mesh_status_description": message.mesh_status_description,
            "linked_mesh_message_id": message.linked_mesh_message_id,
        }
    return _data_metadata(message)


def _data_metadata(message) -> dict[str, str]:
    return {
        "mesh_message_id": message.mesh_message_id or "",
        "mailbox": message.mailbox.mailbox_id,
        "sender": message.sender,
        "recipient": message.recipient,
        "workflow_id": message.workflow_id,
        "message_type": message.message_type,
        "subject": message.subject,
        "local_id": message.local_id,
        "filename": message.filename,
        "content_type": message.content_type,
        "partner_id": message.partner_id,
        "size": str(message.size_bytes or 0),
        "sha256": message.payload_sha256,
        "received_at": message.received_at.isoformat() if message.received_at else "",
    }


def deliver(destination: Destination, message) -> str:
    """Deliver `message` to `destination`; returns where it went."""
    kinds = {
        DestinationKind.DIRECTORY: deliver_directory,
        DestinationKind.S3: deliver_s3,
        DestinationKind.AZURE: deliver_azure,
        DestinationKind.WEBHOOK: deliver_webhook,
        DestinationKind.HELD: deliver_held,
    }
    if not message.payload.name or message.payload_purged_at:
        raise DeliveryFailed(
            "The payload is no longer stored (purged or never kept): nothing to deliver."
        )
    return kinds[destination.kind](destination, message)


def deliver_held(destination: Destination, message) -> str:
    return "Held in NeoMesh for the API to collect"


# --- directory ----------------------------------------------------------------------------------


def safe_component(text: str) -> str:
    """One path component a file system accepts and that cannot climb out of the destination."""
    text = _UNSAFE.sub("_", text).strip().strip(".")
    text = text[:MAX_COMPONENT] or "_"
    if text.split(".")[0].upper() in RESERVED:
        text = "_" + text
    return text


def check_template(template: str) -> str:
    """The template, or ValueError saying what is wrong with it."""
    if not template.strip():
        raise ValueError("The filename template is empty.")
    if template.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", template):
        raise ValueError("The filename template must be relative to the directory.")
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise ValueError(f"The filename template is malformed: {exc}.") from None
    unknown = fields - TEMPLATE_FIELDS
    if unknown or "" in fields:
        raise ValueError(
            f"The filename template names unknown fields ({', '.join(sorted(unknown)) or 'a blank one'}); "
            f"it may use {', '.join('{' + f + '}' for f in sorted(TEMPLATE_FIELDS))}."
        )
    if any(part in {"..", "."} for part in re.split(r"[/\\]", template)):
        raise ValueError("The filename template may not contain '.' or '..' folders.")
    return template


def relative_path(template: str, message) -> Path:
    """The file's path under the destination directory, each part sanitised."""
    values = {
        "workflow": message.workflow_id or "no-workflow",
        "date": (message.received_at or timezone.now()).date().isoformat(),
        "filename": message.filename or message.mesh_message_id or f"message-{message.pk}",
        "mesh_id": message.mesh_message_id or f"message-{message.pk}",
        "mailbox": message.mailbox.mailbox_id,
        "sender": message.sender or "unknown",
        "local_id": message.local_id or "none",
    }
    # A value never makes a folder: only the template's own slashes do.
    values = {key: safe_component(value) for key, value in values.items()}
    rendered = check_template(template).format(**values)
    parts = [safe_component(part) for part in re.split(r"[/\\]", rendered) if part.strip()]
    return Path(*parts) if parts else Path(values["mesh_id"])


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _os_error(exc: OSError, where: Path) -> DeliveryFailed:
    if exc.errno == errno.ENOSPC:
        return DeliveryFailed(f"The disk holding {where} is full: free some space, then replay.")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return DeliveryFailed(f"NeoMesh may not write to {where} (permission denied or read-only).")
    if exc.errno == errno.ENOENT:
        return DeliveryFailed(f"The directory {where} does not exist.")
    return DeliveryFailed(f"Writing to {where} failed: {exc.strerror or exc}.")


def deliver_directory(destination: Destination, message) -> str:
    config = destination.settings or {}
    root = Path(config.get("path") or "")
    if not str(root) or not root.is_absolute():
        raise DeliveryFailed("The directory destination has no absolute path set.")
    if not root.is_dir():
        raise DeliveryFailed(f"The directory {root} does not exist (or is not mounted).")
    try:
        relative = relative_path(config.get("template") or DEFAULT_TEMPLATE, message)
    except ValueError as exc:
        raise DeliveryFailed(str(exc)) from None
    target = root / relative
    real_root = root.resolve()
    if not target.parent.resolve().is_relative_to(real_root) and target.parent.exists():
        raise DeliveryFailed(f"The file name {relative} would be written outside {root}.")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.parent.resolve().is_relative_to(real_root):  # a symlinked folder
            raise DeliveryFailed(f"The file name {relative} would be written outside {root}.")
        written = _write_no_overwrite(target, message)
        if config.get("sidecar", True):
            sidecar = written.with_name(written.name + ".json")
            body = json.dumps(metadata(message), indent=2, sort_keys=True).encode("utf-8")
            part = sidecar.with_name(f".{sidecar.name}.{uuid.uuid4().hex}.part")
            with part.open("wb") as handle:
                handle.write(body)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(part, sidecar)  # our own metadata for our own file: replacing it is safe
            _fsync_dir(sidecar.parent)
    except OSError as exc:
        raise _os_error(exc, root) from None
    return str(written)


def _candidates(target: Path, message):
    yield target
    mesh_id = safe_component(message.mesh_message_id or f"message-{message.pk}")
    stem, suffix = target.stem, target.suffix
    yield target.with_name(f"{stem}.{mesh_id}{suffix}")
    for n in range(2, 100):
        yield target.with_name(f"{stem}.{mesh_id}.{n}{suffix}")


def _write_no_overwrite(target: Path, message) -> Path:
    """Write the payload at `target` (or a collision-free name beside it) atomically: `.part`,
    fsync, then a hard link that fails rather than replace an existing file. A file already there
    with the same sha256 is this message delivered before: kept, not written twice."""
    expected = message.payload_sha256 or payloads.sha256_of(message.payload.name)
    part = target.with_name(
        f".{safe_component(message.mesh_message_id or 'message')}.{uuid.uuid4().hex}.part"
    )
    try:
        for candidate in _candidates(target, message):
            if candidate.exists():
                if candidate.is_file() and _sha256_file(candidate) == expected:
                    return candidate
                continue
            if not part.exists():
                digest = hashlib.sha256()
                with payloads.open_payload(message.payload.name) as source, part.open("wb") as out:
                    while block := source.read(CHUNK):
                        digest.update(block)
                        out.write(block)
                    out.flush()
                    os.fsync(out.fileno())
                if digest.hexdigest() != expected:
                    raise DeliveryFailed("The stored payload does not match its recorded sha256.")
            try:
                os.link(part, candidate)
            except FileExistsError:
                continue  # written by someone else meanwhile: look at it on the next turn
            _fsync_dir(candidate.parent)
            return candidate
        raise DeliveryFailed(f"Too many different files already named like {target.name}.")
    finally:
        part.unlink(missing_ok=True)


def probe_directory(destination: Destination) -> str:
    root = Path((destination.settings or {}).get("path") or "")
    if not str(root) or not root.is_absolute() or not root.is_dir():
        raise DeliveryFailed(f"The directory {root or '(not set)'} does not exist.")
    probe = root / f".neomesh-probe-{uuid.uuid4().hex}"
    try:
        with probe.open("wb") as handle:
            handle.write(b"NeoMesh destination probe")
            os.fsync(handle.fileno())
        probe.unlink()
    except OSError as exc:
        raise _os_error(exc, root) from None
    return f"Wrote and removed {probe.name} in {root}"


# --- S3 -----------------------------------------------------------------------------------------


def _s3_client(destination: Destination):
    import boto3
    from botocore.config import Config

    config = destination.settings or {}
    return boto3.client(
        "s3",
        endpoint_url=config.get("endpoint_url") or None,
        region_name=config.get("region") or "eu-west-2",
        aws_access_key_id=config.get("access_key_id") or None,
        aws_secret_access_key=destination.secret or None,
        config=Config(retries={"max_attempts": 2}, connect_timeout=10, read_timeout=60),
    )


def _ascii(value: str, limit: int = 500) -> str:
    return "".join(c if 32 <= ord(c) < 127 else "?" for c in value)[:limit]


def s3_key(destination: Destination, message) -> str:
    prefix = (destination.settings or {}).get("prefix", "inbound/{mailbox}/")
    prefix = prefix.replace("{mailbox}", safe_component(message.mailbox.mailbox_id))
    return prefix + safe_component(message.mesh_message_id or f"message-{message.pk}")


def _s3_error(exc, destination: Destination) -> DeliveryFailed:
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

    bucket = (destination.settings or {}).get("bucket", "")
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        if code in {"NoSuchBucket", "404"}:
            return DeliveryFailed(f"The bucket {bucket} does not exist.")
        if code in {"InvalidAccessKeyId", "SignatureDoesNotMatch", "403", "AccessDenied"}:
            return DeliveryFailed(
                f"The object store refused the credentials for bucket {bucket} ({code}): "
                "check the access key and secret."
            )
        return DeliveryFailed(f"The object store refused the upload to {bucket}: {code}.")
    if isinstance(exc, EndpointConnectionError):
        return DeliveryFailed(f"Could not connect to the object store: {exc}.")
    if isinstance(exc, BotoCoreError):
        return DeliveryFailed(f"Talking to the object store failed: {exc}.")
    return DeliveryFailed(f"Uploading to the object store failed: {exc}.")


def deliver_s3(destination: Destination, message) -> str:
    from boto3.s3.transfer import TransferConfig
    from botocore.exceptions import BotoCoreError, ClientError

    bucket = (destination.settings or {}).get("bucket", "")
    if not bucket:
        raise DeliveryFailed("The S3 destination has no bucket set.")
    key = s3_key(destination, message)
    client = _s3_client(destination)
    expected = message.payload_sha256 or payloads.sha256_of(message.payload.name)
    try:
        try:  # delivered before (a retry after a crash): the object named by the MESH id is there
            head = client.head_object(Bucket=bucket, Key=key)
            if head.get("Metadata", {}).get("sha256") == expected:
                return f"s3://{bucket}/{key}"
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in {"404", "NoSuchKey", "NotFound"}:
                raise
        meta = {key_: _ascii(value) for key_, value in metadata(message).items() if value}
        with payloads.open_payload(message.payload.name) as source:
            client.upload_fileobj(
                source,
                bucket,
                key,
                ExtraArgs={"Metadata": meta},
                # In the calling thread: a worker that dies mid-upload (or a test's stand-in for
                # it) must not leave s3transfer's pool waiting for parts that never come.
                Config=TransferConfig(
                    multipart_threshold=8 * CHUNK, multipart_chunksize=8 * CHUNK, use_threads=False
                ),
            )
    except (ClientError, BotoCoreError) as exc:
        raise _s3_error(exc, destination) from None
    return f"s3://{bucket}/{key}"


def probe_s3(destination: Destination) -> str:
    from botocore.exceptions import BotoCoreError, ClientError

    bucket = (destination.settings or {}).get("bucket", "")
    key = (destination.settings or {}).get("prefix", "").replace("{mailbox}", "probe") + (
        f".neomesh-probe-{uuid.uuid4().hex}"
    )
    client = _s3_client(destination)
    try:
        client.put_object(Bucket=bucket, Key=key, Body=b"NeoMesh destination probe")
        client.delete_object(Bucket=bucket, Key=key)
    except (ClientError, BotoCoreError) as exc:
        raise _s3_error(exc, destination) from None
    return f"Wrote and removed s3://{bucket}/{key}"


# --- Azure Blob storage -------------------------------------------------------------------------

# Blocks of this size are staged one at a time from the local copy and committed together at the
# end, so a blob is never visible half-written: a worker dying mid-upload leaves only uncommitted
# blocks, which Azure discards.
AZURE_BLOCK = 8 * CHUNK


def _azure_container(destination: Destination):
    from azure.storage.blob import BlobServiceClient

    config = destination.settings or {}
    account_url = config.get("account_url", "")
    if not account_url.startswith(("https://", "http://")):
        raise DeliveryFailed("The Azure destination has no http(s) account_url set.")
    credential = (
        {"account_name": config["account_name"], "account_key": destination.secret}
        if config.get("account_name") and destination.secret
        else destination.secret or None  # a SAS token, or none for a public test container
    )
    service = BlobServiceClient(
        account_url,
        credential=credential,
        max_single_put_size=AZURE_BLOCK,
        max_block_size=AZURE_BLOCK,
        connection_timeout=10,
        read_timeout=60,
        retry_total=2,
    )
    return service.get_container_client(config.get("container", ""))


def azure_blob_name(destination: Destination, message) -> str:
    prefix = (destination.settings or {}).get("prefix", "inbound/{mailbox}/")
    prefix = prefix.replace("{mailbox}", safe_component(message.mailbox.mailbox_id))
    return prefix + safe_component(message.mesh_message_id or f"message-{message.pk}")


def _azure_error(exc, destination: Destination) -> DeliveryFailed:
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ResourceNotFoundError,
        ServiceRequestError,
    )

    container = (destination.settings or {}).get("container", "")
    code = getattr(exc, "error_code", None) or ""
    if isinstance(exc, ResourceNotFoundError) or code == "ContainerNotFound":
        return DeliveryFailed(f"The Azure container {container} does not exist.")
    if isinstance(exc, ClientAuthenticationError) or code in {
        "AuthenticationFailed",
        "AuthorizationFailure",
    }:
        return DeliveryFailed(
            f"Azure refused the credentials for container {container}: check the account name "
            "and key (or SAS token)."
        )
    if isinstance(exc, ServiceRequestError):
        return DeliveryFailed(f"Could not connect to Azure Blob storage: {type(exc).__name__}.")
    if isinstance(exc, HttpResponseError):
        return DeliveryFailed(
            f"Azure Blob storage refused the upload to {container}: "
            f"{code or getattr(exc, 'status_code', '') or type(exc).__name__}."
        )
    return DeliveryFailed(f"Uploading to Azure Blob storage failed: {type(exc).__name__}.")


def _azure_existing_sha256(blob) -> str | None:
    """The sha256 metadata of the blob already there, "" when it has none, None when absent."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        return blob.get_blob_properties().metadata.get("sha256", "")
    except ResourceNotFoundError as exc:
        if getattr(exc, "error_code", "") == "ContainerNotFound":
            raise
        return None


def deliver_azure(destination: Destination, message) -> str:
    from azure.core.exceptions import AzureError, ResourceExistsError

    container = _azure_container(destination)
    name = azure_blob_name(destination, message)
    where = f"{container.url}/{name}"
    blob = container.get_blob_client(name)
    expected = message.payload_sha256 or payloads.sha256_of(message.payload.name)
    try:
        for _ in range(2):
            existing = _azure_existing_sha256(blob)
            if existing == expected:  # delivered before (a retry after a crash): nothing to do
                return where
            if existing is not None:
                raise DeliveryFailed(
                    f"Another blob is already at {name} (a different sha256): it is not "
                    "overwritten. Move it away, then replay."
                )
            meta = {key: _ascii(value) for key, value in metadata(message).items() if value}
            with payloads.open_payload(message.payload.name) as source:
                try:
                    blob.upload_blob(
                        source,
                        length=message.size_bytes or 0,
                        metadata=meta,
                        overwrite=False,
                        max_concurrency=1,
                    )
                    return where
                except ResourceExistsError:
                    continue  # another worker committed it meanwhile: check what is there
    except AzureError as exc:
        raise _azure_error(exc, destination) from None
    raise DeliveryFailed(f"The blob {name} kept changing while it was delivered.")


def probe_azure(destination: Destination) -> str:
    from azure.core.exceptions import AzureError

    container = _azure_container(destination)
    prefix = (destination.settings or {}).get("prefix", "").replace("{mailbox}", "probe")
    blob = container.get_blob_client(f"{prefix}.neomesh-probe-{uuid.uuid4().hex}")
    try:
        blob.upload_blob(b"NeoMesh destination probe", overwrite=False)
        blob.delete_blob()
    except AzureError as exc:
        raise _azure_error(exc, destination) from None
    return f"Wrote and removed {blob.url}"


# --- webhook ------------------------------------------------------------------------------------


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 over `timestamp.body`: a receiver refuses an old timestamp (replay)."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def _post(destination: Destination, document: dict, delivery_key: str) -> str:
    import requests

    config = destination.settings or {}
    url = config.get("url", "")
    if not url.startswith(("https://", "http://")):
        raise DeliveryFailed("The webhook has no http(s) URL set.")
    if not destination.secret:
        raise DeliveryFailed("The webhook has no signing secret set.")
    timeout = float(config.get("timeout") or 10)
    body = json.dumps(document, sort_keys=True).encode("utf-8")
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-NeoMesh-Timestamp": timestamp,
        "X-NeoMesh-Signature": sign(destination.secret, timestamp, body),
        "X-NeoMesh-Delivery": delivery_key,
    }
    try:
        response = requests.post(
            url, data=body, headers=headers, timeout=timeout, allow_redirects=False
        )
    except requests.Timeout:
        raise DeliveryFailed(f"The webhook did not answer within {timeout:g} seconds.") from None
    except requests.RequestException as exc:
        raise DeliveryFailed(f"Could not reach the webhook: {type(exc).__name__}.") from None
    if 300 <= response.status_code < 400:
        raise DeliveryFailed(
            f"The webhook answered {response.status_code} (a redirect to "
            f"{response.headers.get('Location', 'nowhere')}); redirects are not followed: set the final URL."
        )
    if not 200 <= response.status_code < 300:
        raise DeliveryFailed(
            f"The webhook answered {response.status_code}, not a 2xx confirmation."
        )
    return url


def deliver_webhook(destination: Destination, message) -> str:
    import base64

    limit = int((destination.settings or {}).get("body_limit") or 0)
    document = {"event": "message.received", "message": metadata(message)}
    size = message.size_bytes or 0
    if limit and size <= limit:
        with payloads.open_payload(message.payload.name) as source:
            document["body_base64"] = base64.b64encode(source.read(limit + 1)).decode("ascii")
    else:
        # Too large to carry: a signed link the receiver fetches the body from, until it expires.
        url, expires_at = payload_link(destination=destination, message=message)
        document["payload_url"] = url
        document["payload_url_expires_at"] = (
            datetime.fromtimestamp(expires_at, tz=UTC).isoformat().replace("+00:00", "Z")
        )
    key = f"{message.mailbox.mailbox_id}:{message.mesh_message_id or message.pk}"
    return _post(destination, document, key)


def probe_webhook(destination: Destination) -> str:
    url = _post(destination, {"event": "probe"}, f"probe:{uuid.uuid4().hex}")
    return f"The webhook at {url} confirmed a probe"


def probe(destination: Destination) -> str:
    """Write and remove a probe: what was done, or DeliveryFailed."""
    if destination.kind == DestinationKind.DIRECTORY:
        return probe_directory(destination)
    if destination.kind == DestinationKind.S3:
        return probe_s3(destination)
    if destination.kind == DestinationKind.AZURE:
        return probe_azure(destination)
    if destination.kind == DestinationKind.WEBHOOK:
        return probe_webhook(destination)
    return "Held for the API: nothing to probe"
