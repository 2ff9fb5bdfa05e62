"""What the API takes in (validated, each field named in errors) and gives back."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from portal.events.kinds import KINDS
from portal.mailboxes.models import Mailbox
from portal.messaging.mesh_codes import explain
from portal.messaging.models import Direction, Message, Status


def _mailbox(value: str, context: dict) -> Mailbox:
    """The mailbox named, within the caller's reach (a token's owner's: a mailbox the owner sees
    but the token's grants leave out is refused by the scope check, naming it); one out of reach
    reads as no such mailbox."""
    mailboxes = Mailbox.objects.all()
    if (request := context.get("request")) is not None:
        token = getattr(request.user, "api_token", None)
        mailboxes = mailboxes.within_reach(token.owner if token else request.user)
    mailbox = mailboxes.filter(mailbox_id=value.strip().upper()).first()
    if mailbox is None:
        raise serializers.ValidationError(f"There is no mailbox {value} in NeoMesh.")
    return mailbox


class SendFieldsSerializer(serializers.Serializer):
    """The MESH fields of a send: query parameters with a raw body, or form fields with multipart."""

    mailbox = serializers.CharField(
        max_length=20, help_text="The sending mailbox id, e.g. X26ABC1."
    )
    recipient = serializers.CharField(max_length=20, help_text="The recipient mailbox id.")
    workflow_id = serializers.CharField(max_length=300)
    subject = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)
    filename = serializers.CharField(max_length=300, required=False, default="", allow_blank=True)
    local_id = serializers.CharField(
        max_length=300,
        required=False,
        default="",
        allow_blank=True,
        help_text="Your reference; without an Idempotency-Key it also makes repeats safe.",
    )
    content_type = serializers.CharField(
        max_length=100,
        required=False,
        default="",
        allow_blank=True,
        help_text="The payload's content type for MESH; by default the request's Content-Type.",
    )
    encrypted = serializers.BooleanField(required=False, default=False)
    compressed = serializers.BooleanField(required=False, default=False)

    def validate_mailbox(self, value: str) -> Mailbox:
        return _mailbox(value, self.context)


class SendMultipartSerializer(SendFieldsSerializer):
    """For the OpenAPI document: the multipart form of a send."""

    file = serializers.FileField()


class MessageFilterSerializer(serializers.Serializer):
    mailbox = serializers.CharField(max_length=20, required=False)
    direction = serializers.ChoiceField(choices=Direction.choices, required=False)
    status = serializers.ChoiceField(choices=Status.choices, required=False)
    workflow = serializers.CharField(max_length=300, required=False)
    since = serializers.DateTimeField(required=False, help_text="Created at or after (ISO 8601).")
    limit = serializers.IntegerField(min_value=1, max_value=200, required=False, default=50)
    cursor = serializers.CharField(max_length=500, required=False)

    def validate_mailbox(self, value: str) -> Mailbox:
        return _mailbox(value, self.context)


class ConfirmSerializer(serializers.Serializer):
    sha256 = serializers.RegexField(
        r"^[0-9a-f]{64}$",
        required=False,
        help_text="The sha256 (hex) of the file you stored: refused if it is not the payload's.",
        error_messages={"invalid": "Give the sha256 as 64 lower-case hexadecimal digits."},
    )


class TimelineEntrySerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    kind = serializers.CharField()
    label = serializers.CharField(source="get_kind_display")
    detail = serializers.CharField()


class FailureSerializer(serializers.Serializer):
    mesh_code = serializers.CharField(allow_blank=True)
    detail = serializers.CharField()


class MessageSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    payload_url = serializers.SerializerMethodField()
    mailbox = serializers.CharField(source="mailbox.mailbox_id")
    failure = serializers.SerializerMethodField()

    class Meta:
        model = Message
        fields = [
            "id",
            "url",
            "mailbox",
            "direction",
            "message_type",
            "status",
            "mesh_message_id",
            "local_id",
            "workflow_id",
            "sender",
            "recipient",
            "subject",
            "filename",
            "content_type",
            "size_bytes",
            "payload_sha256",
            "encrypted",
            "compressed",
            "created_at",
            "accepted_at",
            "received_at",
            "acknowledged_at",
            "payload_confirmed_at",
            "failure",
            "payload_url",
        ]

    def get_url(self, message: Message) -> str:
        return self.context["request"].build_absolute_uri(reverse("api:message", args=[message.pk]))

    def get_payload_url(self, message: Message) -> str | None:
        if not message.payload:
            return None
        path = reverse("api:payload", args=[message.pk])
        return self.context["request"].build_absolute_uri(path)

    @extend_schema_field(FailureSerializer(allow_null=True))
    def get_failure(self, message: Message) -> dict | None:
        if message.status != Status.FAILED:
            return None
        code = message.mesh_status_code
        detail = message.failure_reason or explain(code, message.mesh_status_description)
        return {"mesh_code": code, "detail": detail}


class MessageDetailSerializer(MessageSerializer):
    timeline = TimelineEntrySerializer(many=True, source="events.all")

    class Meta(MessageSerializer.Meta):
        fields = [*MessageSerializer.Meta.fields, "timeline"]


class MessagePageSerializer(serializers.Serializer):
    results = MessageSerializer(many=True)
    next = serializers.URLField(allow_null=True, help_text="The next page, or null at the end.")


class ConfirmResultSerializer(serializers.Serializer):
    first = serializers.BooleanField(help_text="False when the file had been confirmed already.")
    message = MessageSerializer()


class EventFilterSerializer(serializers.Serializer):
    after = serializers.IntegerField(
        min_value=0,
        required=False,
        default=0,
        help_text="The last `seq` you have read (0 for the oldest kept): only later events come.",
    )
    wait = serializers.IntegerField(
        min_value=0,
        max_value=30,
        required=False,
        default=0,
        help_text="Seconds to wait for an event when there is none yet (long poll), at most 30.",
    )
    limit = serializers.IntegerField(min_value=1, max_value=500, required=False, default=100)
    kind = serializers.ChoiceField(choices=sorted(KINDS), required=False)


class EventSerializer(serializers.Serializer):
    seq = serializers.IntegerField()
    kind = serializers.CharField()
    severity = serializers.CharField()
    summary = serializers.CharField()
    created_at = serializers.DateTimeField()
    mailbox = serializers.SerializerMethodField()
    message_id = serializers.IntegerField(allow_null=True)
    message_url = serializers.SerializerMethodField()
    workflow = serializers.CharField()
    data = serializers.DictField()

    def get_mailbox(self, event) -> str | None:
        return self.context["mailboxes"].get(event.mailbox_id)

    def get_message_url(self, event) -> str | None:
        if event.message_id is None:
            return None
        path = reverse("api:message", args=[event.message_id])
        return self.context["request"].build_absolute_uri(path)


class EventPageSerializer(serializers.Serializer):
    results = EventSerializer(many=True)
    after = serializers.IntegerField(help_text="Pass this as `after` next time.")
    next = serializers.URLField()
