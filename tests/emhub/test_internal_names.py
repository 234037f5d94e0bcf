"""The check every page test runs (tests/internal_names.py) finds what it is meant to find."""

import pytest

from tests.internal_names import internal_names_in, is_marketer_page


@pytest.mark.parametrize(
    "shown",
    [
        "<td>Person.GetPersonEntity</td>",
        "<p>NotFoundCrmError: Person 9999 does not exist</p>",
        "<tr><th>Run key</th><td>abc</td></tr>",
        "<th>RUN KEY</th>",
        "<div>12 SOAP calls</div>",
        "<span>61F</span>",
        '<span title="AppointmentAgent.Save">x</span>',
        "<td>EMARKETING</td>",
    ],
)
def test_the_check_finds_internal_names_people_would_see(shown):
    assert internal_names_in(f"<html><body>{shown}</body></html>")


def test_the_check_leaves_plain_words_and_code_alone():
    html = (
        "<p>SuperOffice has no person 9999.</p><p>Marketing sendouts: legitimate interest</p>"
        '<script>var x = "GetPersonEntity";</script><input name="purpose" value="EMARKETING">'
    )
    assert internal_names_in(html) == []


def test_admin_pages_are_not_marketer_pages():
    assert not is_marketer_page("/settings/superoffice/calls/")
    assert is_marketer_page("/automations/runs/")


def test_the_reps_panel_pages_are_checked_like_the_marketers():
    assert is_marketer_page("/panels/AbC123/leads/")
    assert is_marketer_page("/panels/AbC123/queue/")
    assert not is_marketer_page("/settings/panels/")
