"""The embedded default: SQLite, the filesystem broker, the NetServer simulator on loopback."""

from .base import *  # noqa: F403
from .base import VAR_DIR, env

DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = SECRET_KEY or "embedded-default-not-for-production-" + "x" * 20  # noqa: F405
# The embedded default keys its stored secrets with a key kept under var/ (made on first start); production sets FIELD_ENCRYPTION_KEYS.
_key_file = VAR_DIR / "field-encryption.key"
if not FIELD_ENCRYPTION_KEYS:  # noqa: F405
    if not _key_file.exists():
        from cryptography.fernet import Fernet

        VAR_DIR.mkdir(parents=True, exist_ok=True)
        _key_file.write_text(Fernet.generate_key().decode())
        _key_file.chmod(0o600)
    FIELD_ENCRYPTION_KEYS = [_key_file.read_text().strip()]
CRM_ALLOW_PRIVATE_ADDRESSES = env.bool("CRM_ALLOW_PRIVATE_ADDRESSES", default=True)
EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND", default="django.core.mail.backends.filebased.EmailBackend"
)
EMAIL_FILE_PATH = VAR_DIR / "mail"
