"""`POST /api/v1/events/`: one event or a batch of up to 1,000, stored once per `event_id`."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from emhub.api_auth import ApiKeyAuthentication, HasAccount, request_account
from emhub.api_docs import error_responses
from emhub.api_inputs import IdField, PlausibleDateTimeField, TextField

from .models import Event, EventType
from .services import (
    CONTACT_FIELD_MAX,
    EMAIL_MAX,
    EVENT_ID_MAX,
    EVENTS_BATCH_MAX,
    EventsInvalid,
    IngestResult,
    events_ingest,
)


class EventInputSerializer(serializers.Serializer):
    event_id = TextField(
        max_length=EVENT_ID_MAX,
        help_text="Your id for this event. An event sent again with the same id is stored once "
        "and reported as a duplicate, so a failed post can simply be retried.",
    )
    type = serializers.ChoiceField(choices=EventType.choices)
    campaign = IdField(help_text="The id of a campaign of this account.")
    email = serializers.EmailField(
        max_length=EMAIL_MAX,
        help_text="The contact's address; contacts are keyed by it, case-insensitively.",
    )
    first_name = TextField(
        max_length=CONTACT_FIELD_MAX["first_name"], required=False, allow_blank=True
    )
    last_name = TextField(
        max_length=CONTACT_FIELD_MAX["last_name"], required=False, allow_blank=True
    )
    phone = TextField(max_length=CONTACT_FIELD_MAX["phone"], required=False, allow_blank=True)
    mobile = TextField(max_length=CONTACT_FIELD_MAX["mobile"], required=False, allow_blank=True)
    title = TextField(max_length=CONTACT_FIELD_MAX["title"], required=False, allow_blank=True)
    company_name = TextField(
        max_length=CONTACT_FIELD_MAX["company_name"], required=False, allow_blank=True
    )
    occurred_at = PlausibleDateTimeField(
        required=False,
        help_text="When it happened (ISO 8601, from 1970 to a day from now); the time of "
        "receipt when left out.",
    )
    link = IdField(
        required=False,
        allow_null=True,
        help_text="Link clicks: the id of the tracked link of this campaign that was clicked.",
    )
    form = IdField(
        required=False,
        allow_null=True,
        help_text="Form submissions: the id of the form of this campaign that was submitted.",
    )
    data = serializers.DictField(
        required=False,
        help_text="Facts of the event as an object: the submitted fields, a landing page's URL, …",
    )


class EventBatchInputSerializer(serializers.Serializer):
    events = EventInputSerializer(
        many=True,
        allow_empty=False,
        max_length=EVENTS_BATCH_MAX,
        error_messages={
            "empty": "Send at least one event.",
            "max_length": "Send at most {max_length} events in one batch.",
        },
    )


class IngestedEventOutputSerializer(serializers.Serializer):
    event_id = serializers.CharField()
    id = serializers.IntegerField(help_text="The hub's id of the stored event.")
    status = serializers.ChoiceField(
        choices=["stored", "duplicate"],
        help_text="`duplicate`: an event with this event_id was stored before; `id` is that one.",
    )


class EventIngestOutputSerializer(serializers.Serializer):
    stored = serializers.IntegerField(help_text="Events stored by this request.")
    duplicates = serializers.IntegerField(help_text="Events whose event_id was already stored.")
    runs = serializers.IntegerField(help_text="Automation runs the stored events started.")
    events = IngestedEventOutputSerializer(many=True, help_text="One per event sent, in order.")

    @staticmethod
    def from_result(result: IngestResult) -> dict:
        return {
            "stored": len(result.stored),
            "duplicates": result.duplicates,
            "runs": len(result.runs),
            "events": [
                {
                    "event_id": e.event_id,
                    "id": e.id,
                    "status": "duplicate" if e.duplicate else "stored",
                }
                for e in result.events
            ],
        }


def _batch_errors(errors) -> dict:
    """DRF reports a batch's errors as a list with an entry per event; we key them by index."""
    events = errors.get("events")
    if isinstance(events, list) and events and all(isinstance(e, dict) for e in events):
        return dict(errors, events={str(i): e for i, e in enumerate(events) if e})
    if isinstance(events, dict) and set(events) == {"non_field_errors"}:
        return dict(errors, events=events["non_field_errors"])  # about the batch as a whole
    return errors


def _service_errors(exc: EventsInvalid, *, batch: bool) -> dict:
    if exc.batch_errors:
        return {"events" if batch else "non_field_errors": exc.batch_errors}
    if batch:
        return {"events": {str(index): fields for index, fields in sorted(exc.errors.items())}}
    return exc.errors.get(0, {})


class EventIngestApi(APIView):
    """Events in: from a marketing platform, a web shop, a landing page builder."""

    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [HasAccount]

    @extend_schema(
        operation_id="events_create",
        summary="Send one event or a batch of events",
        description=(
            'Send one event object, or `{"events": [...]}` with up to '
            f"{EVENTS_BATCH_MAX} events. Each event is stored once per `event_id`; the "
            "contact is created or updated by email. A batch is all or nothing: when any "
            "event is invalid, nothing is stored and the answer is 400 with the messages "
            "per field, keyed by the event's index in the batch "
            '(`{"events": {"3": {"email": ["Enter a valid email address."]}}}`); for a '
            "single event the messages are keyed by field."
        ),
        request=PolymorphicProxySerializer(
            component_name="EventIngestRequest",
            serializers=[EventInputSerializer, EventBatchInputSerializer],
            resource_type_field_name=None,
        ),
        responses={
            201: EventIngestOutputSerializer,
            400: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="Nothing was stored. Messages per field, by event index for a batch.",
                examples=[
                    OpenApiExample(
                        "A bad event in a batch",
                        value={"events": {"3": {"email": ["Enter a valid email address."]}}},
                    ),
                    OpenApiExample(
                        "Too many events",
                        value={"events": ["Send at most 1000 events in one batch."]},
                    ),
                ],
            ),
            **error_responses(401, 403, 415),
        },
        examples=[
            OpenApiExample(
                "A click",
                request_only=True,
                value={
                    "event_id": "mail-123-click-1",
                    "type": "link_clicked",
                    "campaign": 7,
                    "email": "anna.berg@example.com",
                    "first_name": "Anna",
                    "link": 12,
                    "occurred_at": "2025-05-01T09:30:00Z",
                },
            ),
            OpenApiExample(
                "A batch",
                request_only=True,
                value={
                    "events": [
                        {
                            "event_id": "e-1",
                            "type": "email_opened",
                            "campaign": 7,
                            "email": "a@example.com",
                        },
                        {
                            "event_id": "e-2",
                            "type": "form_submitted",
                            "campaign": 7,
                            "email": "b@example.com",
                            "form": 3,
                            "data": {"fields": {"interest": "Pricing"}},
                        },
                    ]
                },
            ),
        ],
        tags=["events"],
    )
    def post(self, request):
        body = request.data
        batch = isinstance(body, dict) and "events" in body
        serializer = (EventBatchInputSerializer if batch else EventInputSerializer)(data=body)
        if not serializer.is_valid():
            errors = _batch_errors(serializer.errors) if batch else serializer.errors
            return Response(errors, status=status.HTTP_400_BAD_REQUEST)
        events = serializer.validated_data["events"] if batch else [serializer.validated_data]
        try:
            result = events_ingest(
                account=request_account(request), events=events, source=Event.Source.API
            )
        except EventsInvalid as exc:
            return Response(_service_errors(exc, batch=batch), status=status.HTTP_400_BAD_REQUEST)
        return Response(
            EventIngestOutputSerializer.from_result(result), status=status.HTTP_201_CREATED
        )
