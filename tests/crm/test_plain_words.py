"""CRM errors, calls and legal bases in a marketer's words (crm.plain_words)."""

import pytest

from crm.plain_words import call_in_words, error_in_words, legal_basis_in_words


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        ("NotFoundCrmError: Person 9999 does not exist", "SuperOffice has no person 9999."),
        ("NotFoundCrmError: Contact 12 does not exist", "SuperOffice has no company 12."),
        (
            "PermanentCrmError: NetServer answered Person.GetPersonEntity without a body",
            "SuperOffice refused it: NetServer answered a SuperOffice request without a body",
        ),
        (
            "ConfigurationCrmError: SuperOffice refused the user name or password",
            "SuperOffice refused the hub's connection: "
            "SuperOffice refused the user name or password",
        ),
        ("TransientCrmError: Network error: ReadTimeout", "SuperOffice could not be reached"),
        ("", ""),
        ("Automation deleted", "Automation deleted"),
    ],
)
def test_errors_read_as_what_happened(stored, expected):
    words = error_in_words(stored)
    assert words.startswith(expected)
    assert "CrmError" not in words and "GetPersonEntity" not in words


def test_calls_say_what_the_hub_did():
    assert call_in_words(agent="Person", operation="GetPersonEntity") == "read the person"
    assert call_in_words(agent="Appointment", operation="SaveAppointmentEntity") == (
        "saved the follow-up"
    )
    assert call_in_words(agent="Foo", operation="GetSomethingNew") == "read from SuperOffice"


def test_legal_bases_by_name():
    assert legal_basis_in_words("61F") == "legitimate interest"
    assert legal_basis_in_words("61A") == "consent"
    assert legal_basis_in_words("CUSTOM") == "CUSTOM"
