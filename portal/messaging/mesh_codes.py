"""MESH status and error codes in plain English, with what to do next (mesh-protocol.md 6.3)."""

from __future__ import annotations

CODES: dict[str, tuple[str, str]] = {
    "02": (
        "The message had no data (the file was empty or could not be read).",
        "Check the file and send it again.",
    ),
    "06": (
        "MESH rejected the message headers as malformed.",
        "Check the subject, local id, filename and checksum for unusual characters, then resend.",
    ),
    "07": (
        "The sender address did not match the mailbox that sent it.",
        "Check the mailbox configuration; contact support if it persists.",
    ),
    "08": ("No recipient was given.", "Choose a recipient mailbox and resend."),
    "09": ("MESH did not accept the message format version.", "Contact support."),
    "11": ("MESH did not accept the message type.", "Contact support."),
    "12": (
        "The recipient mailbox is not registered with MESH.",
        "Check the recipient mailbox id (look it up by ODS code and workflow) and resend.",
    ),
    "14": (
        "The recipient did not collect the message within 5 days, or their mailbox was deactivated.",
        "Contact the recipient organisation, then resend.",
    ),
    "15": ("The CP-IS file was not valid.", "Correct the file and resend."),
    "16": (
        "This mailbox is not allowed to send this type of message.",
        "Ask NHS England to register the workflow for this mailbox.",
    ),
    "17": (
        "The workflow id is not registered for this mailbox or the recipient.",
        "Check the workflow id; if it is right, ask NHS England to register it for both mailboxes.",
    ),
    "18": (
        "The ONS civil-registration workflow is not enabled for this mailbox.",
        "Ask NHS England to enable it.",
    ),
    "19": ("The message's expiry period was not valid.", "Contact support."),
    "20": ("The message does not exist in MESH.", "It may have expired or been collected already."),
    "EPL-150": (
        "More than one MESH mailbox matched the recipient.",
        "Address the message to a specific mailbox id.",
    ),
    "EPL-151": (
        "No MESH mailbox matched the recipient.",
        "Check the recipient mailbox id and resend.",
    ),
}

HTTP_REASONS: dict[int, str] = {
    400: "MESH rejected the request as invalid.",
    403: "MESH refused the mailbox's credentials (password, shared key or certificate).",
    404: "MESH has no such message.",
    410: "The message is no longer available in MESH.",
    417: "MESH rejected the message.",
    423: "The message was already finalised in MESH.",
    429: "MESH asked us to slow down.",
}


def explain(code: str | None, description: str = "", *, http_status: int | None = None) -> str:
    """One or two sentences for a person: what went wrong and what to do."""
    code = (code or "").strip()
    if code in CODES:
        meaning, action = CODES[code]
        text = f"MESH code {code}: {meaning} {action}"
    elif http_status in HTTP_REASONS:
        text = HTTP_REASONS[http_status]
    else:
        text = "MESH reported a problem."
    if description and description.lower() not in text.lower():
        text += f" (MESH said: {description})"
    return text
