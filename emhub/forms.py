from django import forms
from django.contrib.auth.forms import AuthenticationForm


class SignInForm(AuthenticationForm):
    """Django's sign-in form with messages that tell the user what to do."""

    error_messages = {
        "invalid_login": "That user name and password do not match. Check both and try again.",
        "inactive": "This user is switched off. Ask your account admin.",
    }

    username = forms.CharField(
        label="User name", max_length=150, widget=forms.TextInput(attrs={"autofocus": True})
    )


class ApiKeyCreateForm(forms.Form):
    name = forms.CharField(
        label="Name",
        max_length=100,
        help_text="What uses this key, for example 'Web shop'.",
    )

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("Give the key a name.")
        return name


class AccountPickForm(forms.Form):
    account_id = forms.IntegerField(widget=forms.HiddenInput)
