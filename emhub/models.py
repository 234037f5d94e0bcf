"""Accounts (one customer, one SuperOffice tenant), memberships and API keys."""

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone


class Account(models.Model):
    """One customer of the hub with one SuperOffice tenant. Every customer row points here."""

    slug = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    class Role(models.TextChoices):
        ADMIN = "admin", "Admin"
        MARKETER = "marketer", "Marketer"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.MARKETER)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "account"], name="membership_unique_user_account"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.account} ({self.role})"

    @property
    def is_admin(self) -> bool:
        return self.role == self.Role.ADMIN


API_KEY_PREFIX = "emh_"


def hash_api_key(raw_key: str) -> str:
    # The key is 32 random bytes, so a fast unsalted hash is enough: there is
    # nothing to brute-force, and lookups by hash stay one indexed query.
    return hashlib.sha256(raw_key.encode()).hexdigest()


def generate_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


class ApiKey(models.Model):
    """A key for the REST API. Only its hash is stored; the key is shown once."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, help_text="The first characters, to recognise a key.")
    key_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class WorkerHeartbeat(models.Model):
    """Written by a beat-scheduled task run on a worker: proof that both are alive."""

    seen_at = models.DateTimeField(default=timezone.now, db_index=True)
    hostname = models.CharField(max_length=200, blank=True)

    def __str__(self) -> str:
        return f"{self.hostname} at {self.seen_at:%Y-%m-%d %H:%M:%S}"
