"""An encrypted text field for stored secrets (SuperOffice passwords, tokens, keys).

Fernet (AES-128-CBC with HMAC-SHA256) through cryptography's MultiFernet: the first
key in FIELD_ENCRYPTION_KEYS encrypts, every key decrypts, so keys rotate without
downtime. The plaintext never reaches the database, logs or reprs.
"""

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


@lru_cache(maxsize=4)
def _fernet_for(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS is empty: set it to one or more Fernet keys, made with "
            "`python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())'`."
        )
    return MultiFernet([Fernet(key.encode()) for key in keys])


def fernet() -> MultiFernet:
    return _fernet_for(tuple(settings.FIELD_ENCRYPTION_KEYS))


def encrypt_text(value: str) -> str:
    return fernet().encrypt(value.encode()).decode()


def decrypt_text(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ImproperlyConfigured(
            "A stored secret cannot be decrypted with FIELD_ENCRYPTION_KEYS: "
            "keep the old key in the list until `rotate_secrets` has run."
        ) from exc


class EncryptedTextField(models.TextField):
    """Stores a Fernet token; Python code sees the plaintext string ('' when unset)."""

    def from_db_value(self, value, expression, connection):
        if value in (None, ""):
            return ""
        return decrypt_text(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value in (None, ""):
            return ""
        return encrypt_text(value)

    def rotated_token(self, stored_token: str) -> str:
        return fernet().rotate(stored_token.encode()).decode()
