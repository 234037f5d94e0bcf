"""The consent API: read a contact's legal basis by email, record a consent.

The way in for on-site SuperOffice installations without sync, and for sites that
collect consent in their own forms. Scoped to the caller's account.
"""

import re

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from emhub.api_auth import request_account
from emhub.api_docs import error_responses
from emhub.api_inputs import BoundedLimitOffsetPagination, PlausibleDateTimeField, TextField

from .models import Origin, Purpose
from .selectors import (
    consent_history_for_contact,
    consent_state_for_contact,
    contact_by_email,
    legal_basis_keys,
)
from .services import consent_record_for_email

LEGAL_BASIS_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


class ConsentStateSerializer(serializers.Serializer):
    purpose = serializers.CharField(help_text="STORE or EMARKETING.")
    purpose_name = serializers.CharField()
    legal_basis = serializers.CharField(
        allow_null=True, help_text="A legal-base key such as 61A or 61F, WITHDRAWN, or null."
    )
    granted = serializers.BooleanField(help_text="A legal basis is held and not withdrawn.")
    source = serializers.CharField(allow_null=True)
    changed_at = serializers.DateTimeField(allow_null=True)
    origin = serializers.CharField(allow_null=True)


class ConsentChangeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    purpose = serializers.CharField()
    legal_basis = serializers.CharField()
    source = serializers.CharField()
    changed_at = serializers.DateTimeField()
    recorded_at = serializers.DateTimeField()
    origin = serializers.CharField()
    reason = serializers.CharField()


class ConsentHistoryPageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.CharField(allow_null=True)
    previous = serializers.CharField(allow_null=True)
    results = ConsentChangeSerializer(many=True)


class ContactConsentSerializer(serializers.Serializer):
    email = serializers.EmailField()
    superoffice_person_id = serializers.IntegerField(allow_null=True)
    consents = ConsentStateSerializer(many=True)
    history = ConsentHistoryPageSerializer(help_text="Every change, newest first; paginated.")


class ConsentQuerySerializer(serializers.Serializer):
    email = serializers.EmailField()


class ConsentRecordSerializer(serializers.Serializer):
    email = serializers.EmailField()
    purpose = serializers.ChoiceField(choices=Purpose.choices)
    legal_basis = TextField(
        max_length=40,
        help_text="A legal-base key of the account's SuperOffice (List.GetLegalBases; 61A, "
        "61B, 61F, … or WITHDRAWN). Without a SuperOffice connection: 61A, 61B, 61F or "
        "WITHDRAWN.",
    )
    source = TextField(
        max_length=60,
        required=False,
        allow_blank=True,
        default="API",
        help_text="A SuperOffice consent-source key (USER, WEBFORM, API, …).",
    )
    changed_at = PlausibleDateTimeField(
        required=False, help_text="When the consent was given or withdrawn; now if left out."
    )

    def validate_legal_basis(self, value: str) -> str:
        if not LEGAL_BASIS_PATTERN.match(value.strip()):
            raise serializers.ValidationError(
                "Use a legal-base key of letters, digits, '-' or '_', such as 61A or WITHDRAWN."
            )
        key = value.strip().upper()
        known = legal_basis_keys(account=self.context["account"])
        if key not in known:
            raise serializers.ValidationError(
                f"Unknown legal-base key {key}: use one of {', '.join(sorted(known))}."
            )
        return key


class ConsentRecordedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField()
    purpose = serializers.CharField()
    legal_basis = serializers.CharField()
    source = serializers.CharField()
    changed_at = serializers.DateTimeField()
    current = ConsentStateSerializer(help_text="The purpose's state after this change.")


def _state_data(state) -> dict:
    current = state.current
    return {
        "purpose": state.purpose,
        "purpose_name": state.label,
        "legal_basis": current.legal_basis if current else None,
        "granted": state.is_granted,
        "source": current.source if current else None,
        "changed_at": current.changed_at if current else None,
        "origin": current.origin if current else None,
    }


class ConsentApi(APIView):
    @extend_schema(
        operation_id="consents_read",
        parameters=[
            OpenApiParameter("email", OpenApiTypes.EMAIL, required=True),
            OpenApiParameter(
                "limit",
                {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": BoundedLimitOffsetPagination.max_limit,
                },
                description="History page size.",
            ),
            OpenApiParameter(
                "offset",
                {
                    "type": "integer",
                    "minimum": 0,
                    "maximum": BoundedLimitOffsetPagination.max_offset,
                },
                description="History page start.",
            ),
        ],
        responses={200: ContactConsentSerializer, **error_responses(400, 401, 403, 404)},
        tags=["consents"],
        description="The current legal basis per purpose and the history of a contact, "
        "found by email. 404 when the account has no contact with that address.",
    )
    def get(self, request):
        query = ConsentQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        paginator = BoundedLimitOffsetPagination()
        # A bad limit or offset is a 400 whether or not the contact exists.
        paginator.get_limit(request)
        paginator.get_offset(request)
        contact = contact_by_email(
            account=request_account(request), email=query.validated_data["email"]
        )
        if contact is None:
            raise Http404("No contact with this email in this account.")
        page = paginator.paginate_queryset(
            consent_history_for_contact(contact=contact), request, view=self
        )
        data = {
            "email": contact.email,
            "superoffice_person_id": contact.superoffice_person_id,
            "consents": [_state_data(s) for s in consent_state_for_contact(contact=contact)],
            "history": {
                "count": paginator.count,
                "next": paginator.get_next_link(),
                "previous": paginator.get_previous_link(),
                "results": ConsentChangeSerializer(page, many=True).data,
            },
        }
        return Response(ContactConsentSerializer(data).data)

    @extend_schema(
        operation_id="consents_record",
        request=ConsentRecordSerializer,
        responses={201: ConsentRecordedSerializer, **error_responses(400, 401, 403, 415)},
        tags=["consents"],
        description="Record a consent or a withdrawal (legal_basis WITHDRAWN) for an email. "
        "The contact is created when the account has none with that address. "
        "An older change than the one held is kept in the history only.",
    )
    def post(self, request):
        serializer = ConsentRecordSerializer(
            data=request.data, context={"account": request_account(request)}
        )
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        change = consent_record_for_email(
            account=request_account(request),
            email=data["email"],
            purpose=data["purpose"],
            legal_basis=data["legal_basis"],
            source=data.get("source") or "API",
            changed_at=data.get("changed_at"),
            origin=Origin.API,
            reason="Recorded through the consent API.",
        )
        state = next(
            s
            for s in consent_state_for_contact(contact=change.contact)
            if s.purpose == change.purpose
        )
        body = {
            "id": change.pk,
            "email": change.contact.email,
            "purpose": change.purpose,
            "legal_basis": change.legal_basis,
            "source": change.source,
            "changed_at": change.changed_at,
            "current": _state_data(state),
        }
        return Response(ConsentRecordedSerializer(body).data, status=status.HTTP_201_CREATED)
