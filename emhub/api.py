"""API key management over the REST API (session-authenticated account admins)."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.response import Response
from rest_framework.views import APIView

from .api_auth import HasAccount, IsAccountAdmin, request_account
from .api_docs import error_responses
from .api_inputs import TextField
from .selectors import api_keys_of
from .services import api_key_issue, api_key_revoke


class ApiKeyOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    prefix = serializers.CharField()
    created_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)


class ApiKeyCreatedSerializer(ApiKeyOutputSerializer):
    key = serializers.CharField(help_text="The key itself. Shown this once; store it now.")


class ApiKeyInputSerializer(serializers.Serializer):
    name = TextField(max_length=100, allow_blank=False, trim_whitespace=True)


class ApiKeyListApi(APIView):
    authentication_classes = [SessionAuthentication]
    permission_classes = [HasAccount, IsAccountAdmin]

    @extend_schema(
        responses={200: ApiKeyOutputSerializer(many=True), **error_responses(401, 403)},
        tags=["api keys"],
    )
    def get(self, request):
        keys = api_keys_of(account=request_account(request))
        return Response(ApiKeyOutputSerializer(keys, many=True).data)

    @extend_schema(
        request=ApiKeyInputSerializer,
        responses={201: ApiKeyCreatedSerializer, **error_responses(400, 401, 403, 415)},
        tags=["api keys"],
    )
    def post(self, request):
        serializer = ApiKeyInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        issued = api_key_issue(
            account=request_account(request),
            name=serializer.validated_data["name"],
            created_by=request.user,
        )
        data = dict(ApiKeyOutputSerializer(issued.api_key).data, key=issued.raw_key)
        return Response(data, status=status.HTTP_201_CREATED)


class ApiKeyDetailApi(APIView):
    authentication_classes = [SessionAuthentication]
    permission_classes = [HasAccount, IsAccountAdmin]

    @extend_schema(
        responses={200: ApiKeyOutputSerializer, **error_responses(401, 403, 404)},
        tags=["api keys"],
    )
    def get(self, request, key_id: int):
        api_key = get_object_or_404(api_keys_of(account=request_account(request)), pk=key_id)
        return Response(ApiKeyOutputSerializer(api_key).data)

    @extend_schema(responses={204: None, **error_responses(401, 403, 404)}, tags=["api keys"])
    def delete(self, request, key_id: int):
        api_key = get_object_or_404(api_keys_of(account=request_account(request)), pk=key_id)
        api_key_revoke(api_key=api_key)
        return Response(status=status.HTTP_204_NO_CONTENT)


class WhoAmIOutputSerializer(serializers.Serializer):
    account = serializers.CharField()
    account_name = serializers.CharField()
    principal = serializers.CharField()


class WhoAmIApi(APIView):
    """Which account a key or session works in: the first call an integrator makes."""

    @extend_schema(
        responses={200: WhoAmIOutputSerializer, **error_responses(401, 403)}, tags=["api keys"]
    )
    def get(self, request):
        account = request_account(request)
        return Response(
            {"account": account.slug, "account_name": account.name, "principal": str(request.user)}
        )
