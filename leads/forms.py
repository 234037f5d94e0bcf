"""Forms of the panels and of the admin's panel settings. Bad input is a form error."""

from __future__ import annotations

from urllib.parse import urlsplit

from django import forms
from django.conf import settings as django_settings
from django.core.exceptions import ValidationError

from .models import Panel

ORIGIN_HELP = "One per line, e.g. https://online.superoffice.com"


def _origin(value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.path not in ("", "/"):
        raise ValidationError(f"{value!r} is not an origin like https://online.superoffice.com")
    if parts.query or parts.fragment or parts.username:
        raise ValidationError(f"{value!r} is not an origin like https://online.superoffice.com")
    if parts.scheme == "http" and not django_settings.CRM_ALLOW_PRIVATE_ADDRESSES:
        raise ValidationError("SuperOffice is served over https; use an https origin.")
    # A CSP source: no quotes, spaces or semicolons can slip into the header.
    return f"{parts.scheme}://{parts.netloc.lower()}"


class PanelSettingsForm(forms.Form):
    context_identifier = forms.CharField(
        label="SuperOffice tenant (context identifier)",
        max_length=100,
        required=False,
        help_text="Online's customer number, e.g. Cust12345. Signed-in users must belong to it.",
    )
    frame_ancestors = forms.CharField(
        label="SuperOffice address allowed to show the panels",
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        help_text=ORIGIN_HELP,
    )
    oidc_issuer = forms.URLField(
        assume_scheme="https",
        label="SuperOffice sign-in (OpenID Connect issuer)",
        required=False,
        help_text="https://online.superoffice.com (production) or https://sod.superoffice.com",
    )
    oidc_client_id = forms.CharField(
        label="Application (client) id", max_length=200, required=False
    )
    oidc_client_secret = forms.CharField(
        label="Client secret",
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Leave blank to keep the stored one.",
    )
    usec_enabled = forms.BooleanField(
        label="On-site: accept the panel URL's <usec> (verified with NetServer)", required=False
    )
    flag_after_days = forms.IntegerField(
        label="Flag leads not handled after (days)", min_value=1, max_value=365
    )

    def __init__(self, *args, group_choices: list[tuple[int, str]], **kwargs):
        super().__init__(*args, **kwargs)
        for panel, label in Panel.choices:
            self.fields[f"groups_{panel}"] = forms.TypedMultipleChoiceField(
                label=f"{label}: user groups",
                choices=group_choices,
                coerce=int,
                required=False,
                widget=forms.CheckboxSelectMultiple,
                help_text="None ticked: every group sees it.",
            )

    def clean_frame_ancestors(self) -> list[str]:
        lines = [v for v in self.cleaned_data["frame_ancestors"].split() if v]
        if len(lines) > 5:
            raise ValidationError("At most five addresses.")
        return [_origin(v) for v in lines]

    def clean_oidc_issuer(self) -> str:
        value = self.cleaned_data["oidc_issuer"]
        if not value:
            return ""
        from crm.services import netserver_url_validate

        # The hub fetches the discovery document and keys from here: same address rules
        # as the NetServer address (no internal addresses unless the operator allows them).
        netserver_url_validate(url=value)
        return value

    def panel_groups(self) -> dict[str, list[int]]:
        return {panel: self.cleaned_data.get(f"groups_{panel}") or [] for panel in Panel.values}


class MatchForm(forms.Form):
    person_id = forms.IntegerField(min_value=1, max_value=2**31 - 1)
    # Ticked by the rep when the person's name or e-mail differ from the contact's.
    confirmed = forms.BooleanField(required=False)


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=300, required=False)


class RequiredReasonForm(forms.Form):
    reason = forms.CharField(max_length=300)


class BulkMatchForm(forms.Form):
    contact_ids = forms.TypedMultipleChoiceField(coerce=int, required=True)

    def __init__(self, *args, contact_ids: list[int], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["contact_ids"].choices = [(i, i) for i in contact_ids]


class ApproveForm(forms.Form):
    first_name = forms.CharField(max_length=100, required=False)
    last_name = forms.CharField(max_length=100)
    email = forms.EmailField(max_length=254)
    phone = forms.CharField(max_length=50, required=False)
    mobile = forms.CharField(max_length=50, required=False)
    title = forms.CharField(max_length=100, required=False)
    # Chosen by name with the company picker, which puts the company's id here.
    company_id = forms.IntegerField(
        label="Existing company",
        min_value=1,
        max_value=2**31 - 1,
        required=False,
        widget=forms.HiddenInput,
        error_messages={
            "invalid": "Choose the company by name.",
            "min_value": "Choose the company by name.",
            "max_value": "Choose the company by name.",
        },
    )
    create_company = forms.BooleanField(label="Create a new company", required=False)
    company_name = forms.CharField(max_length=200, required=False)
    country_id = forms.TypedChoiceField(
        label="Country", coerce=int, required=False, empty_value=None
    )
    category_id = forms.TypedChoiceField(
        label="Category", coerce=int, required=False, empty_value=None
    )
    business_id = forms.TypedChoiceField(
        label="Business", coerce=int, required=False, empty_value=None
    )

    def __init__(self, *args, allow_company_creation: bool, lists: dict, **kwargs):
        super().__init__(*args, **kwargs)
        self.allow_company_creation = allow_company_creation
        for name in ("country", "category", "business"):
            choices = [("", "—")] + [(i.id, i.name) for i in lists.get(name, [])]
            self.fields[f"{name}_id"].choices = choices
        if not allow_company_creation:
            for name in (
                "create_company",
                "company_name",
                "country_id",
                "category_id",
                "business_id",
            ):
                del self.fields[name]

    def clean(self):
        data = super().clean()
        create = data.get("create_company")
        if create and not data.get("company_name"):
            self.add_error("company_name", "Name the new company.")
        if not create and not data.get("company_id"):
            message = (
                "Choose an existing company by name or create a new company."
                if self.allow_company_creation
                else "Choose an existing company by name (company creation is switched off)."
            )
            self.add_error("company_id", message)
        return data
