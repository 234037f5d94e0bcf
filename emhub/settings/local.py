"""The embedded default: SQLite, the filesystem broker, the NetServer simulator on loopback."""

import os

from .base import *  # noqa: F403
from .base import VAR_DIR, env


def _private_var_dir() -> None:
    """var/ holds the database, the keys, the mail and the logs: its owner's only."""
    VAR_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    if VAR_DIR.stat().st_uid == os.getuid():
        VAR_DIR.chmod(0o700)


def _secret_kept_under_var(name: str, make) -> str:
    """A secret made on first start and kept in var/, so the embedded default needs no set-up."""
    path = VAR_DIR / name
    if not path.exists():
        try:
            # Created readable by its owner only, never for a moment by anyone else.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process of the hub made it at the same moment
        else:
            with os.fdopen(fd, "w") as secret:
                secret.write(make())
    return path.read_text().strip()


def _new_fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def _new_secret_key() -> str:
    from django.core.management.utils import get_random_secret_key

    return get_random_secret_key()


_private_var_dir()
DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = SECRET_KEY or _secret_kept_under_var("secret-key", _new_secret_key)  # noqa: F405
# Production sets FIELD_ENCRYPTION_KEYS; the embedded default keeps its own key in var/.
FIELD_ENCRYPTION_KEYS = FIELD_ENCRYPTION_KEYS or [  # noqa: F405
    _secret_kept_under_var("field-encryption.key", _new_fernet_key)
]
CRM_ALLOW_PRIVATE_ADDRESSES = env.bool("CRM_ALLOW_PRIVATE_ADDRESSES", default=True)
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.filebased.EmailBackend")
EMAIL_FILE_PATH = VAR_DIR / "mail"
