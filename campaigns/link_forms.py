"""The form for what a click on a tracked link shows the recipient."""

from django import forms

from .models import LinkResponse


class LinkResponseForm(forms.Form):
    response_kind = forms.ChoiceField(
        label="After the click", choices=LinkResponse.choices, widget=forms.RadioSelect
    )
    response_url = forms.URLField(
        assume_scheme="https",
        label="Send to",
        required=False,
        max_length=2000,
        help_text="Empty: the link's own address.",
    )
    response_title = forms.CharField(label="Page title", required=False, max_length=200)
    response_html = forms.CharField(
        label="Page text",
        required=False,
        max_length=50000,
        widget=forms.Textarea(attrs={"rows": 8}),
        help_text="Rich text (HTML). Scripts, styles, forms and event handlers are removed.",
    )

    def clean(self):
        data = super().clean()
        if data.get("response_kind") == LinkResponse.TEXT and not (
            (data.get("response_html") or "").strip()
        ):
            self.add_error("response_html", "Write what the recipient should read.")
        return data
