"""The conformance scenarios, in the order of the witnessed-test case list (playbook 3.2).

"ref" is the case number in the list one supplier prepared (the official list is in NHS England's
supplier pack). Tracking and endpoint lookup have no case number there but are part of the MESH
behaviours an assessor asks about.
"""

from __future__ import annotations

from . import errors, reports, rules, transfers, volume
from .base import Context, NotApplicable, RunStopped, Scenario, ScenarioFailed, Step

SCENARIOS: dict[str, Scenario] = {
    scenario.key: scenario
    for scenario in (
        Scenario(
            "handshake",
            "100",
            "Handshake with client headers",
            "Validate the mailbox, sending mex-ClientVersion, mex-OSName and mex-OSVersion.",
            transfers.handshake,
        ),
        Scenario(
            "send_receive",
            "201/202",
            "Send, receive and acknowledge",
            "A small message each way between the mailbox and the peer, compared byte for "
            "byte, then acknowledged.",
            transfers.send_receive,
        ),
        Scenario(
            "uncompressed",
            "401",
            "Receive uncompressed content",
            "The peer sends without compression; the mailbox receives exactly those bytes.",
            transfers.uncompressed,
        ),
        Scenario(
            "receive_chunked",
            "501",
            "Receive a chunked message (MD5)",
            "The peer sends 3 gzip chunks with an md5 checksum; the mailbox fetches every "
            "chunk, reassembles them and checks the checksum.",
            transfers.receive_chunked,
        ),
        Scenario(
            "send_chunked",
            "502",
            "Send a chunked message (SHA-256)",
            "The mailbox sends 3 gzip chunks with a sha256 checksum; the peer reassembles them "
            "and checks the checksum.",
            transfers.send_chunked,
        ),
        Scenario(
            "high_volume",
            "601",
            "High volume, inbox paged past 500",
            "The peer sends hundreds of small messages; the mailbox pages through its inbox "
            "(links.next), downloads and acknowledges every one.",
            volume.high_volume,
        ),
        Scenario(
            "wrong_password",
            "701",
            "Authentication refused (403)",
            "A handshake with a deliberately wrong password must be refused with 403.",
            errors.authentication_refused,
        ),
        Scenario(
            "unknown_recipient",
            "702",
            "Unknown recipient (417, code 12)",
            "Sending to a mailbox that does not exist must be rejected with 417 and code 12.",
            errors.unknown_recipient,
        ),
        Scenario(
            "non_delivery_report",
            "703",
            "Non-delivery report read and linked",
            "A report about a message sent in this run arrives as REPORT, linked to it.",
            reports.non_delivery_report,
        ),
        Scenario(
            "missing_message",
            "704",
            "Download a message that does not exist (404)",
            "Downloading a made-up message id must give 404.",
            errors.missing_message,
        ),
        Scenario(
            "after_acknowledgement",
            "705",
            "Download after acknowledgement",
            "Download a message again after acknowledging it and record what the environment "
            "answers (the sandbox 200, live MESH possibly 410).",
            errors.after_acknowledgement,
        ),
        Scenario(
            "tracking",
            "",
            "Tracking: accepted, then acknowledged",
            "Track a sent message before and after the peer acknowledges it.",
            reports.tracking,
        ),
        Scenario(
            "endpoint_lookup",
            "",
            "Endpoint lookup finds the peer",
            "Look up the peer's ODS code and the run's workflow; the peer must be listed.",
            reports.endpoint_lookup,
        ),
        Scenario(
            "single_request",
            "",
            "One request whenever the message fits",
            "A message over the request limit raw but within it compressed goes in one request; "
            "random data over it goes in chunks that each fit (at a scaled-down limit).",
            rules.single_request,
        ),
        Scenario(
            "business_ack",
            "",
            "Business acknowledgement on <workflow>_ACK",
            "The peer answers a message on the workflow plus _ACK with the same local id; the "
            "mailbox receives it and links it.",
            rules.business_ack,
        ),
    )
}

__all__ = [
    "SCENARIOS",
    "Context",
    "NotApplicable",
    "RunStopped",
    "Scenario",
    "ScenarioFailed",
    "Step",
]


def choices() -> list[tuple[str, str]]:
    return [(s.key, f"{s.ref} {s.title}".strip()) for s in SCENARIOS.values()]
