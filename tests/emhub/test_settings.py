import os
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]


def test_production_settings_pass_the_deployment_checklist(tmp_path):
    env = dict(
        {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
        DJANGO_SETTINGS_MODULE="emhub.settings.production",
        SECRET_KEY="p" * 20 + "-a-long-and-random-production-secret-value-0123456789",
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/emhub",
        CELERY_BROKER_URL="redis://127.0.0.1:6379/0",
        FIELD_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        ALLOWED_HOSTS="hub.example.com",
        EMHUB_VAR_DIR=str(tmp_path),
    )
    result = subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_settings_refuse_to_start_without_secrets(tmp_path):
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "DATABASE_URL", "CELERY_BROKER_URL"}
    }
    env.update(DJANGO_SETTINGS_MODULE="emhub.settings.production", EMHUB_VAR_DIR=str(tmp_path))
    result = subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr
