"""Non-delivery report (witness case 703), tracking a sent message, and endpoint lookup."""

from __future__ import annotations

import time

import requests

from .base import Context, NotApplicable, Step, payload_text

ADMIN_REPORT_PATH = "/messageexchange/admin/report"


def _inject_report(ctx: Context, step: Step, linked_id: str, local_id: str) -> str:
    """Put an undelivered-message report into the mailbox's inbox through the sandbox admin API."""
    url = ctx.mailbox.effective_base_url() + ADMIN_REPORT_PATH
    body = {
        "mailbox_id": ctx.mailbox.mailbox_id,
        "code": "14",
        "status": "undeliverable",
        "description": "Message not collected by recipient after 5 days",
        "workflow_id": ctx.workflow_id,
        "linked_message_id": linked_id,
        "local_id": local_id,
        "subject": f"NeoMesh conformance run {ctx.run.pk}: non-delivery",
    }
    session = requests.Session()
    session.trust_env = False
    started = time.monotonic()
    try:
        response = session.post(url, json=body, timeout=30)
    finally:
        session.close()
    ctx.recorder.add_manual(
        ctx.mailbox.mailbox_id,
        method="POST",
        path=ADMIN_REPORT_PATH,
        status=response.status_code,
        elapsed_ms=round((time.monotonic() - started) * 1000, 1),
        request_headers={"Content-Type": "application/json"},
        note="mesh-sandbox admin API (not part of MESH): inject a non-delivery report",
    )
    step.check(
        response.status_code == 200,
        f"The sandbox refused to inject the report: HTTP {response.status_code}.",
    )
    return response.json()["message_id"]


def non_delivery_report(ctx: Context, step: Step) -> str:
    if not ctx.is_sandbox:
        raise NotApplicable(
            "Not applicable here: needs 5 days. MESH raises this report only after a message has "
            "waited 5 days uncollected. Send a message to a mailbox that will not collect it, start "
            "it early (playbook 3.2), and read the report when it arrives."
        )
    mailbox, peer = ctx.mailbox.mailbox_id, ctx.peer.mailbox_id
    local_id = ctx.local_id("ndr")
    data = payload_text("never-collected", 256)
    original = ctx.send(
        step, ctx.client, peer, ctx.workflow_id, data, "left uncollected", local_id=local_id
    )
    report_id = step.message(_inject_report(ctx, step, original, local_id))
    ctx.outstanding[report_id] = ctx.client
    step.check(
        not ctx.wait_listed(ctx.client, [report_id], step),
        f"The report {report_id} never reached {mailbox}'s inbox.",
    )
    info, body = ctx.receive(step, ctx.client, report_id, "non-delivery report")
    step.check(info.is_report, f"{report_id} arrived as {info.message_type}, not REPORT.")
    step.check(
        info.linked_message_id == original,
        f"The report links to {info.linked_message_id!r}, not to {original}.",
    )
    step.check(info.status_code == "14", f"The report's status code is {info.status_code!r}.")
    step.check(not body, f"A report has no body; this one had {len(body)} bytes.")
    ctx.acknowledge(ctx.client, report_id)
    # The original was never meant to be collected; acknowledge it so it does not linger.
    ctx.acknowledge(ctx.peer_client, original)
    for key in ("status_code", "status_event", "status_description", "local_id"):
        step.measure(f"report_{key}", getattr(info, key))
    return (
        f"{mailbox} sent {original}; the sandbox's admin API reported it undelivered. {mailbox} "
        f"read report {report_id} as REPORT, linked to {original}, code {info.status_code} "
        f"({info.status_description}), and acknowledged it."
    )


def _wait_status(ctx: Context, mesh_id: str, wanted: str) -> str | None:
    deadline = time.monotonic() + ctx.delivery_timeout
    while True:
        status = ctx.client.track(mesh_id).status
        if status == wanted or time.monotonic() >= deadline:
            return status
        time.sleep(ctx.poll_every)


def tracking(ctx: Context, step: Step) -> str:
    peer = ctx.peer.mailbox_id
    data = payload_text("tracking", 512)
    mesh_id = ctx.send(step, ctx.client, peer, ctx.workflow_id, data, "tracked")
    before = _wait_status(ctx, mesh_id, "accepted")
    step.measure("status_after_send", before)
    step.check(before == "accepted", f"Tracking said {before!r} after the send, not 'accepted'.")
    step.check(not ctx.wait_listed(ctx.peer_client, [mesh_id], step), f"{peer} never listed it.")
    ctx.receive(step, ctx.peer_client, mesh_id, "tracked")
    ctx.acknowledge(ctx.peer_client, mesh_id)
    after = _wait_status(ctx, mesh_id, "acknowledged")
    step.measure("status_after_acknowledgement", after)
    step.check(
        after == "acknowledged",
        f"Tracking said {after!r} after {peer} acknowledged it, not 'acknowledged'.",
    )
    return f"Tracking {mesh_id} showed accepted after the send and acknowledged once {peer} acknowledged it."


def endpoint_lookup(ctx: Context, step: Step) -> str:
    ods = ctx.peer.organisation.ods_code
    found = ctx.client.lookup(ods, ctx.workflow_id)
    step.measure("results", [f"{ref.mailbox_id} ({ref.mailbox_name})" for ref in found])
    ids = [ref.mailbox_id for ref in found]
    step.check(
        ctx.peer.mailbox_id in ids,
        f"Looking up ODS {ods} and workflow {ctx.workflow_id} found {ids or 'nothing'}, not "
        f"{ctx.peer.mailbox_id}: is the peer registered to receive {ctx.workflow_id}?",
    )
    return f"Looking up ODS {ods} and workflow {ctx.workflow_id} found {', '.join(ids)}."
