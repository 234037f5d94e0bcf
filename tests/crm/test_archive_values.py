"""Archive values in every encoding SuperOffice documents (encoded-values.md), decoded."""

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest

from crm.client.archive import as_datetime, decode_value, encode_restriction_value, read_bool


@pytest.mark.parametrize(
    ("display", "kind", "expected"),
    [
        # Int, and an int column sent plain.
        ("[I:123]", "int", 123),
        ("[I:-3]", None, -3),
        ("42", "int", 42),
        # Double / decimal, with a decimal point or (a culture's) comma.
        ("[F:123.4]", "decimal", 123.4),
        ("[F:2,5]", "decimal", 2.5),
        # Money keeps its cents exactly.
        ("[M:123.45]", None, Decimal("123.45")),
        # Date: the page's dotted day.month.year, the slashed month/day/year of custom fields.
        ("[D:09.11.2017]", "date", date(2017, 11, 9)),
        ("[D:06/19/2019]", "date", date(2019, 6, 19)),
        # DateTime: the page's form without fractions, and with .NET's seven digits.
        ("[DT:11/09/2017 14:53:18]", "datetime", datetime(2017, 11, 9, 14, 53, 18, tzinfo=UTC)),
        (
            "[DT:11/09/2017 14:53:18.1234567]",
            "datetime",
            datetime(2017, 11, 9, 14, 53, 18, 123456, tzinfo=UTC),
        ),
        ("[DT:06/19/2019 14:35:56.00000]", None, datetime(2019, 6, 19, 14, 35, 56, tzinfo=UTC)),
        # Time and time span (seconds).
        ("[T:14:52]", None, time(14, 52)),
        ("[TS:5400]", "timeSpan", timedelta(minutes=90)),
        # Binary is kept as sent.
        ("[B:X98AB]", None, "X98AB"),
        # Strings are never encoded, even when they look like it.
        ("[emhub:run:8f3a]", "string", "[emhub:run:8f3a]"),
        ("[I:5]", "string", "[I:5]"),
        ("Nordic Software 3", "stringorPK", "Nordic Software 3"),
        ("", "int", None),
        (None, "int", None),
    ],
)
def test_each_documented_encoding_decodes(display, kind, expected):
    assert decode_value(display, kind) == expected


@pytest.mark.parametrize(
    ("display", "expected"),
    [
        ("[I:1]", True),
        ("[I:0]", False),
        ("1", True),
        ("0", False),
        ("True", True),
        ("false", False),
        ("Yes", True),
        ("", False),
        (None, False),
        ("[B:1]", True),
    ],
)
def test_bool_columns_read_whatever_form_netserver_uses(display, expected):
    # No marker is documented for a boolean; SuperOffice encodes booleans as [I:1]/[I:0]
    # elsewhere. Each form reads the same through the column's type too.
    assert read_bool(display) is expected
    assert decode_value(display, "bool") is expected


def test_a_date_reads_as_its_utc_midnight_where_a_moment_is_wanted():
    assert as_datetime(date(2024, 2, 29)) == datetime(2024, 2, 29, tzinfo=UTC)
    moment = datetime(2024, 2, 29, 13, 5, tzinfo=UTC)
    assert as_datetime(moment) is moment
    assert as_datetime("2024-02-29") is None


def test_restriction_values_go_out_plain_or_encoded():
    assert encode_restriction_value(17) == "17"
    assert encode_restriction_value("a@b.example") == "a@b.example"
    assert encode_restriction_value(date(2025, 12, 1)) == "[D:01.12.2025]"
    assert (
        encode_restriction_value(datetime(2025, 12, 1, 8, 30, tzinfo=UTC))
        == "[DT:12/01/2025 08:30:00]"
    )
    # What goes out comes back: the simulator's encoding and the client's decoding agree.
    assert decode_value(encode_restriction_value(date(2025, 12, 1)), "date") == date(2025, 12, 1)
