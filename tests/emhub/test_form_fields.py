"""How a form field is laid out: a checkbox before its label on one line, a group of radios
or checkboxes as a fieldset under a legend, any other field with its label above it."""

import re

from django import forms
from django.template.loader import render_to_string


class _Sample(forms.Form):
    name = forms.CharField(label="Name")
    enabled = forms.BooleanField(label="Enabled", required=False)
    when = forms.ChoiceField(
        label="When", choices=[("now", "Now"), ("later", "Later")], widget=forms.RadioSelect
    )
    groups = forms.MultipleChoiceField(
        label="Groups",
        choices=[("1", "Sales"), ("2", "Support")],
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )


def _field(name: str, data=None) -> str:
    form = _Sample(data)
    if data is not None:
        form.is_valid()
    return render_to_string("_partials/field.html", {"field": form[name]})


def _squashed(html: str) -> str:
    return re.sub(r"\s+", " ", html)


def test_a_checkbox_comes_before_its_label_on_one_line():
    html = _squashed(_field("enabled"))

    assert 'class="field checkbox"' in html
    assert re.search(
        r'<div class="check"><input type="checkbox"[^>]*id="id_enabled"[^>]*> '
        r'<label for="id_enabled">Enabled</label></div>',
        html,
    )


def test_a_radio_group_is_a_fieldset_whose_legend_is_the_label():
    html = _squashed(_field("when"))

    assert html.strip().startswith('<fieldset class="field choices"')
    assert "<legend>When</legend>" in html
    # Each choice's label wraps its own radio; no label points at the group.
    assert re.search(r'<label for="id_when_0"><input type="radio"[^>]*> Now</label>', html)
    assert '<label for="id_when">' not in html


def test_a_checkbox_list_is_a_fieldset_too_and_shows_its_error():
    html = _squashed(_field("groups", data={"name": "x", "when": "now", "groups": ["9"]}))

    assert 'class="field choices has-error"' in html and "<legend>Groups</legend>" in html
    assert 'class="field-error"' in html


def test_a_text_field_keeps_its_label_above_it():
    html = _squashed(_field("name"))

    assert re.search(r'<div class="field"> <label for="id_name">Name</label> <input', html)
