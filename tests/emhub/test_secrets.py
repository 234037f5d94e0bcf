import pytest
from cryptography.fernet import Fernet
from django.db import connection
from django.test import override_settings

from emhub.fields import EncryptedTextField, decrypt_text, encrypt_text


def test_encrypted_text_round_trips_and_is_not_stored_in_the_clear(settings):
    token = encrypt_text("s3cret-password")
    assert "s3cret" not in token
    assert decrypt_text(token) == "s3cret-password"


def test_a_secret_written_under_an_old_key_still_reads_after_rotation(settings):
    old = Fernet.generate_key().decode()
    new = Fernet.generate_key().decode()
    with override_settings(FIELD_ENCRYPTION_KEYS=[old]):
        token = encrypt_text("ticket-123")
    with override_settings(FIELD_ENCRYPTION_KEYS=[new, old]):
        assert decrypt_text(token) == "ticket-123"
        rotated = EncryptedTextField().rotated_token(token)
    with override_settings(FIELD_ENCRYPTION_KEYS=[new]):
        assert decrypt_text(rotated) == "ticket-123"


@pytest.mark.django_db
def test_the_field_stores_ciphertext_in_the_database():
    # A throwaway table shows the field's behaviour without depending on other apps' models.
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE secret_probe (value text)")
        field = EncryptedTextField()
        cursor.execute("INSERT INTO secret_probe VALUES (%s)", [field.get_prep_value("hunter2")])
        cursor.execute("SELECT value FROM secret_probe")
        stored = cursor.fetchone()[0]
    assert "hunter2" not in stored
    assert field.from_db_value(stored, None, connection) == "hunter2"
    assert field.get_prep_value("") == "" and field.from_db_value(None, None, connection) == ""
