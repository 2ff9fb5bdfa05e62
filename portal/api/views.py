"""The HTTP API (/api/v1/): thin views over the messaging services, every call audited."""

from __future__ import annotations

import hashlib
import json
import time
from functools import wraps

from django.core import signing
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.decorators import api_view
from rest_framework.response import Response

from portal.audit.services import Actor, record
from portal.events.models import Event
from portal.lib.http import client_ip
from portal.lib.pagination import keyset_page
from portal.mailboxes.models import Mailbox
from portal.messaging.models import Message
from portal.messaging.services import payload_confirm

from . import downloads, sending
from .auth import caller_actor, require_scope, visible_events, visible_messages
from .models import Scope
from .problems import Problem, problem_response
from .serializers import (
    ConfirmResultSerializer,
    ConfirmSerializer,
    EventFilterSerializer,
    EventPageSerializer,
    EventSerializer,
    MessageDetailSerializer,
    MessageFilterSerializer,
    MessagePageSerializer,
    MessageSerializer,
    SendFieldsSerializer,
    SendMultipartSerializer,
)

PROBLEM = OpenApiResponse(OpenApiTypes.OBJECT, description="RFC 9457 problem details")
ERRORS = {code: PROBLEM for code in (400, 401, 403, 404, 429)}
LONG_POLL_STEP = 0.5


def audited(view):
    """Every call leaves an audit record: the token (or person) as the actor, method, path, status."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        detail = f"{request.method} {request.path} -> {response.status_code}"
        actor = getattr(request, "api_actor", None)
        if actor is None and getattr(request.user, "is_authenticated", False):
            actor = Actor.person(request)
        elif actor is None:
            actor = Actor.system("API caller without a valid token", ip=client_ip(request))
        record(actor=actor, action="api.call", detail=detail)
        return response

    wrapper.cls = getattr(view, "cls", None)  # drf-spectacular finds the view's schema here
    return wrapper


def _message_for(request, pk: int, scope: str) -> Message:
    # Out of the caller's reach (a person's, or a token's grants within its owner's) reads as absent.
    rows = Message.objects.within_reach(request.user).select_related("mailbox")
    message = get_object_or_404(rows, pk=pk)
    require_scope(request, scope, mailbox=message.mailbox, workflow_id=message.workflow_id)
    return message


def _validated(serializer_class, data, request=None):
    serializer = serializer_class(data=data, context={"request": request})
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


# Messages: list and send.
SEND_PARAMETERS = [
    OpenApiParameter(
        name,
        str,
        required=name in ("mailbox", "recipient", "workflow_id"),
        description="With a raw body; in the form with multipart.",
    )
    for name in (
        "mailbox",
        "recipient",
        "workflow_id",
        "subject",
        "filename",
        "local_id",
        "content_type",
    )
] + [
    OpenApiParameter("encrypted", bool),
    OpenApiParameter("compressed", bool),
    OpenApiParameter(
        "Idempotency-Key",
        str,
        OpenApiParameter.HEADER,
        description="A repeat with the same key returns the first message.",
    ),
]


@extend_schema(
    methods=["GET"],
    operation_id="messages_list",
    parameters=[MessageFilterSerializer],
    responses={200: MessagePageSerializer, **ERRORS},
    description="Messages the caller may read, newest first; follow `next` for older ones.",
)
@extend_schema(
    methods=["POST"],
    operation_id="messages_send",
    parameters=SEND_PARAMETERS,
    request={
        "application/octet-stream": OpenApiTypes.BINARY,
        "multipart/form-data": SendMultipartSerializer,
    },
    responses={
        202: MessageSerializer,
        409: PROBLEM,
        411: PROBLEM,
        413: PROBLEM,
        415: PROBLEM,
        **ERRORS,
    },
    description="Queue a message to send: the raw body (or the multipart `file`) is its payload. "
    "Answers 202 with the message; a worker sends it to MESH.",
)
@api_view(["GET", "POST"])
def messages(request):
    if request.method == "POST":
        return _send(request)
    query = _validated(MessageFilterSerializer, request.query_params, request)
    if query.get("mailbox"):
        require_scope(request, Scope.MESSAGES_READ, mailbox=query["mailbox"])
    rows = visible_messages(request, Scope.MESSAGES_READ, Message.objects.for_list())
    rows = _filter(rows, query)
    fingerprint = _fingerprint(request, query)
    after = _cursor_position(query.get("cursor"), fingerprint)
    page = keyset_page(rows, after=after, size=query["limit"])
    next_url = None
    if page.next_cursor:
        token = signing.dumps({"after": page.next_cursor, "q": fingerprint}, salt="api.messages")
        params = request.query_params.copy()
        params["cursor"] = token
        next_url = request.build_absolute_uri(f"{request.path}?{params.urlencode()}")
    results = MessageSerializer(page.items, many=True, context={"request": request}).data
    return Response({"results": results, "next": next_url})


def _filter(rows, query):
    for name, lookup in (
        ("mailbox", "mailbox"),
        ("direction", "direction"),
        ("status", "status"),
        ("workflow", "workflow_id"),
    ):
        if query.get(name):
            rows = rows.filter(**{lookup: query[name]})
    if query.get("since"):
        rows = rows.filter(created_at__gte=query["since"])
    return rows


def _fingerprint(request, query) -> str:
    """Which query (and which caller) a cursor belongs to: a cursor works only for its own query."""
    fields = {k: str(getattr(v, "pk", v)) for k, v in query.items() if k not in ("cursor", "limit")}
    who = f"token:{request.auth.pk}" if caller_actor(request) else f"user:{request.user.pk}"
    text = json.dumps([who, sorted(fields.items())])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _cursor_position(cursor: str | None, fingerprint: str) -> str | None:
    if not cursor:
        return None
    try:
        data = signing.loads(cursor, salt="api.messages")
    except signing.BadSignature:
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("after"), str):
        raise Problem(
            400,
            "The cursor is not one this API gave out: drop it to start from the newest message.",
            kind="invalid",
            errors={"cursor": ["Not a cursor from this API."]},
        )
    if data.get("q") != fingerprint:
        raise Problem(
            400,
            "The cursor belongs to another query: repeat the query with the same "
            "filters, or drop the cursor.",
            kind="invalid",
            errors={"cursor": ["From another query."]},
        )
    return data["after"]


def _send(request):
    django_request = request._request
    media = (request.content_type or "").split(";")[0].strip().lower()
    if media in sending.REFUSED_TYPES:
        raise Problem(
            415,
            "Send the payload as the raw body (any content type) with the MESH "
            "fields as query parameters, or as multipart/form-data with a `file` part.",
        )
    size = sending.content_length(django_request)
    multipart = media in sending.FORM_TYPES
    sending.check_size(size, overhead=sending.MULTIPART_OVERHEAD if multipart else 0)
    data = django_request.POST if multipart else request.query_params
    fields = _validated(SendFieldsSerializer, data, request)
    require_scope(request, Scope.MESSAGES_SEND, mailbox=fields["mailbox"])
    if multipart:
        upload = django_request.FILES.get("file")
        if upload is None:
            raise Problem(
                400,
                "Put the payload in a form part named `file`.",
                kind="invalid",
                errors={"file": ["This field is required."]},
            )
        source, size = upload, upload.size
        fields["filename"] = fields["filename"] or upload.name
        content_type = upload.content_type or ""
    else:
        source = sending.ExactReader(sending.body_stream(django_request), size)
        content_type = "" if media == "application/octet-stream" else media
    return _queue_once(request, fields, source, size, content_type)


def _queue_once(request, fields, source, size, content_type):
    key = sending.idempotency_key(request, fields)
    reservation, earlier = (None, None)
    if key:
        reservation, earlier = sending.idempotency_reserve(mailbox=fields["mailbox"], key=key)
    if earlier is not None:
        return _accepted(request, earlier, replayed=True)
    try:
        message = sending.queue(
            fields=fields,
            source=source,
            size=size,
            content_type=content_type,
            actor=caller_actor(request) or Actor.person(request._request),
        )
    except BaseException:
        if reservation is not None:
            reservation.delete()
        raise
    if reservation is not None:
        reservation.message = message
        reservation.save(update_fields=["message"])
    return _accepted(request, message, replayed=False)


def _accepted(request, message: Message, *, replayed: bool) -> Response:
    body = MessageSerializer(message, context={"request": request}).data
    headers = {"Location": body["url"]}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return Response(body, status=202, headers=headers)


@extend_schema(
    responses={200: MessageDetailSerializer, **ERRORS}, description="One message with its timeline."
)
@api_view(["GET"])
def message(request, pk: int):
    found = _message_for(request, pk, Scope.MESSAGES_READ)
    return Response(MessageDetailSerializer(found, context={"request": request}).data)


@extend_schema(
    parameters=[
        OpenApiParameter(
            "Range", str, OpenApiParameter.HEADER, description="One byte range, e.g. bytes=0-1023."
        )
    ],
    responses={
        (200, "application/octet-stream"): OpenApiTypes.BINARY,
        (206, "application/octet-stream"): OpenApiTypes.BINARY,
        416: PROBLEM,
        **ERRORS,
    },
    description="The stored payload, streamed. `Repr-Digest` carries the whole file's sha256.",
)
@api_view(["GET"])
def payload(request, pk: int):
    found = _message_for(request, pk, Scope.PAYLOADS_READ)
    response = downloads.payload_response(found, request.headers.get("Range"))
    detail = f"{found.size_bytes} bytes" + (
        f", {response['Content-Range']}" if response.has_header("Content-Range") else ""
    )
    actor = caller_actor(request) or Actor.person(request._request)
    record(actor=actor, action="message.payload_downloaded", obj=found, detail=detail)
    return response


@extend_schema(
    request=ConfirmSerializer,
    responses={200: ConfirmResultSerializer, 409: PROBLEM, **ERRORS},
    description="Say the consuming system has stored the received file.",
)
@api_view(["POST"])
def confirm(request, pk: int):
    found = _message_for(request, pk, Scope.PAYLOADS_READ)
    body = _validated(ConfirmSerializer, request.data)
    if body.get("sha256") and found.payload_sha256 and body["sha256"] != found.payload_sha256:
        raise Problem(
            409,
            "The sha256 you sent is not the stored file's: download it again before confirming.",
            kind="checksum-mismatch",
        )
    if found.direction != "in":
        raise Problem(409, "Only a received message's payload can be confirmed.")
    actor = caller_actor(request) or Actor.person(request._request)
    first = payload_confirm(message=found, source=f"API confirm by {actor.label}", actor=actor)
    result = MessageSerializer(found, context={"request": request}).data
    return Response({"first": first, "message": result})


@extend_schema(
    parameters=[EventFilterSerializer],
    responses={200: EventPageSerializer, **ERRORS},
    description="What happened (received, acknowledged, failed, non-delivery reports...) in commit "
    "order: keep the last `seq` and pass it as `after`, so nothing is missed or seen twice. With "
    "`wait`, an empty answer is held until an event comes or the seconds pass.",
)
@api_view(["GET"])
def events(request):
    query = _validated(EventFilterSerializer, request.query_params)
    rows = visible_events(request, Event.objects.published().after(query["after"]))
    if query.get("kind"):
        rows = rows.filter(kind=query["kind"])
    found = _wait_for(rows, query["limit"], seconds=query["wait"])
    after = found[-1].seq if found else query["after"]
    mailboxes = dict(
        Mailbox.objects.filter(pk__in={e.mailbox_id for e in found}).values_list("pk", "mailbox_id")
    )
    context = {"request": request, "mailboxes": mailboxes}
    params = request.query_params.copy()
    params["after"] = str(after)
    return Response(
        {
            "results": EventSerializer(found, many=True, context=context).data,
            "after": after,
            "next": request.build_absolute_uri(f"{request.path}?{params.urlencode()}"),
        }
    )


def _wait_for(rows, limit: int, *, seconds: int) -> list:
    """The first `limit` rows, re-read every half second until some come or `seconds` pass."""
    deadline = time.monotonic() + seconds
    while True:
        found = list(rows[:limit])
        if found or time.monotonic() >= deadline:
            return found
        time.sleep(min(LONG_POLL_STEP, max(deadline - time.monotonic(), 0)))


def not_found(request, *args, **kwargs):
    response = problem_response(404, "There is no such API address: see /api/v1/docs/.")
    response.accepted_renderer = _json_renderer()
    response.accepted_media_type = "application/problem+json"
    response.renderer_context = {}
    return response.render()


def _json_renderer():
    from rest_framework.renderers import JSONRenderer

    return JSONRenderer()


def message_url(message: Message) -> str:
    return reverse("api:message", args=[message.pk])
