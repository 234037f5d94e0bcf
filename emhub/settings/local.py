"""The embedded default: SQLite, the filesystem broker, the NetServer simulator on loopback."""

from .base import *  # noqa: F403
from .base import VAR_DIR, env


def _secret_kept_under_var(name: str, make) -> str:
    """A secret made on first start and kept in var/, so the embedded default needs no set-up."""
    path = VAR_DIR / name
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(make())
        path.chmod(0o600)
    return path.read_text().strip()


def _new_fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def _new_secret_key() -> str:
    from django.core.management.utils import get_random_secret_key

    return get_random_secret_key()


DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = SECRET_KEY or _secret_kept_under_var("secret-key", _new_secret_key)  # noqa: F405
# Production sets FIELD_ENCRYPTION_KEYS; the embedded default keeps its own key in var/.
FIELD_ENCRYPTION_KEYS = FIELD_ENCRYPTION_KEYS or [  # noqa: F405
    _secret_kept_under_var("field-encryption.key", _new_fernet_key)
]
CRM_ALLOW_PRIVATE_ADDRESSES = env.bool("CRM_ALLOW_PRIVATE_ADDRESSES", default=True)
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.filebased.EmailBackend")
EMAIL_FILE_PATH = VAR_DIR / "mail"
