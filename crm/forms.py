from django import forms

from .models import SuperOfficeConnection

_STORED_VALUE_HELP = "Stored encrypted and never shown again. Leave blank to keep the stored value."


class ConnectionForm(forms.Form):
    base_url = forms.CharField(
        label="NetServer address",
        max_length=300,
        help_text="For example https://sod.superoffice.com/Cust12345/ "
        "(the hub adds /Remote/Services88/).",
    )
    auth_mode = forms.ChoiceField(label="Sign-in", choices=SuperOfficeConnection.AuthMode.choices)
    username = forms.CharField(label="User name (on-site)", max_length=200, required=False)
    password = forms.CharField(
        label="Password (on-site)",
        required=False,
        help_text=_STORED_VALUE_HELP,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )
    application_token = forms.CharField(
        label="Application token (client secret)",
        required=False,
        help_text=_STORED_VALUE_HELP,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
    )
    context_identifier = forms.CharField(
        label="Context identifier (Online, e.g. Cust12345)", max_length=100, required=False
    )
    system_user_token = forms.CharField(
        label="System user token (Online)",
        required=False,
        help_text=_STORED_VALUE_HELP,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
    )
    private_key = forms.CharField(
        label="Private key, PEM (Online)",
        required=False,
        help_text=_STORED_VALUE_HELP,
        widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "off"}),
    )
    use_tenant_wsdl = forms.BooleanField(
        label="Load the tenant's own WSDL instead of the hub's", required=False
    )
    allow_company_creation = forms.BooleanField(
        label="Allow the hub to create companies in SuperOffice", required=False
    )
    legal_basis_sync_enabled = forms.BooleanField(
        label="Keep legal basis in step with SuperOffice", required=False
    )

    def __init__(self, *args, connection: SuperOfficeConnection | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.connection = connection

    def _stored(self, field: str) -> bool:
        return bool(self.connection is not None and getattr(self.connection, field))

    def clean(self):
        data = super().clean()
        mode = data.get("auth_mode")
        has = {
            f: bool(data.get(f)) or self._stored(f)
            for f in ("password", "application_token", "system_user_token", "private_key")
        }
        if mode == SuperOfficeConnection.AuthMode.ONSITE:
            if not data.get("username"):
                self.add_error("username", "On-site sign-in needs a user name.")
            if not has["password"]:
                self.add_error("password", "On-site sign-in needs a password.")
        elif mode == SuperOfficeConnection.AuthMode.ONLINE:
            if not has["application_token"]:
                self.add_error("application_token", "Online needs the application token.")
            if not has["system_user_token"]:
                self.add_error("system_user_token", "Online needs the system user token.")
            if not has["private_key"]:
                self.add_error("private_key", "Online needs the private key.")
            if not data.get("context_identifier"):
                self.add_error("context_identifier", "Online needs the context identifier.")
        return data
