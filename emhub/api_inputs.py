"""What the REST API accepts: a JSON parser that refuses what cannot be stored, text and
date fields that refuse what no database takes, and a paginator with bounds.

Each turns bad input into a 400 with a message (emhub.inputs says why each is bad).
"""

from rest_framework import parsers, serializers
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.pagination import LimitOffsetPagination

from .inputs import ID_MAX, JSON_MAX_DEPTH, OUT_OF_RANGE, datetime_problem, json_depth, text_problem


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError(
                f"JSON parse error - nested too deeply; at most {JSON_MAX_DEPTH} levels."
            ) from exc
        if json_depth(data) > JSON_MAX_DEPTH:
            raise ParseError(f"JSON nested too deeply; at most {JSON_MAX_DEPTH} levels.")
        return data


def storable_text(value: str) -> None:
    problem = text_problem(value)
    if problem:
        raise serializers.ValidationError(problem)


class TextField(serializers.CharField):
    """A string, as the schema says (DRF's CharField would take a number and make it one),
    whose value can be stored: no NUL (DRF's own check) and no lone surrogate."""

    default_error_messages = {"not_a_string": "Send a string."}

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.validators.append(storable_text)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_a_string")
        return super().to_internal_value(data)


class PlausibleDateTimeField(serializers.DateTimeField):
    """An ISO 8601 time between 1970 and a day from now (emhub.inputs.datetime_problem)."""

    def to_internal_value(self, value):
        try:
            parsed = super().to_internal_value(value)
        except OverflowError as exc:  # a time zone that moves year 1 or 9999 off the calendar
            raise serializers.ValidationError(OUT_OF_RANGE) from exc
        problem = datetime_problem(parsed)
        if problem:
            raise serializers.ValidationError(problem)
        return parsed


class IdField(serializers.IntegerField):
    """A row's id: 1 to 2^63 - 1, so no database is asked for an id it cannot hold."""

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", ID_MAX)
        super().__init__(**kwargs)


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    """`?limit=` from 1 to max_limit and `?offset=` from 0 to max_offset; anything else is a
    400 with the parameter's message instead of a silent default (or a database overflow)."""

    default_limit = 50
    max_limit = 200
    max_offset = 1_000_000_000

    def _bounded(self, request, name: str, *, low: int, high: int, default: int) -> int:
        raw = request.query_params.get(name)
        if raw is None:
            return default
        text = raw.strip()
        if (
            not (text.isascii() and text.isdecimal())
            or len(text) > 19
            or not (low <= int(text) <= high)
        ):
            raise ValidationError({name: [f"Send a whole number from {low} to {high}."]})
        return int(text)

    def get_limit(self, request):
        return self._bounded(
            request, self.limit_query_param, low=1, high=self.max_limit, default=self.default_limit
        )

    def get_offset(self, request):
        return self._bounded(
            request, self.offset_query_param, low=0, high=self.max_offset, default=0
        )

    def get_schema_operation_parameters(self, view):
        limit, offset = super().get_schema_operation_parameters(view)
        limit["schema"].update(minimum=1, maximum=self.max_limit, default=self.default_limit)
        offset["schema"].update(minimum=0, maximum=self.max_offset, default=0)
        return [limit, offset]
