"""Writes for accounts, memberships and API keys."""

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from .models import Account, ApiKey, Membership, WorkerHeartbeat, generate_api_key, hash_api_key


@dataclass(frozen=True)
class IssuedApiKey:
    api_key: ApiKey
    raw_key: str  # shown to the user once, never stored


def account_create(*, slug: str, name: str) -> Account:
    return Account.objects.create(slug=slug, name=name)


def membership_grant(*, user, account: Account, role: str) -> Membership:
    membership, _ = Membership.objects.update_or_create(
        user=user, account=account, defaults={"role": role}
    )
    return membership


def user_ensure(
    *, username: str, email: str, password: str, first_name: str = "", last_name: str = ""
):
    """Create the user, or reset the password of an existing one (used by the demo seed)."""
    user_model = get_user_model()
    user, _ = user_model.objects.get_or_create(
        username=username,
        defaults={"email": email, "first_name": first_name, "last_name": last_name},
    )
    user.set_password(password)
    user.save(update_fields=["password"])
    return user


def api_key_issue(*, account: Account, name: str, created_by=None) -> IssuedApiKey:
    raw_key = generate_api_key()
    api_key = ApiKey.objects.create(
        account=account,
        name=name,
        prefix=raw_key[:10],
        key_hash=hash_api_key(raw_key),
        created_by=created_by,
    )
    return IssuedApiKey(api_key=api_key, raw_key=raw_key)


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    return api_key


def api_key_touch(*, api_key: ApiKey) -> None:
    """Record use at most once a minute, so a busy key does not write on every request."""
    now = timezone.now()
    if api_key.last_used_at is None or (now - api_key.last_used_at).total_seconds() > 60:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)


def heartbeat_record(*, hostname: str) -> WorkerHeartbeat:
    return WorkerHeartbeat.objects.create(hostname=hostname[:200])


@transaction.atomic
def heartbeats_prune(*, keep: int = 100) -> int:
    keep_ids = list(
        WorkerHeartbeat.objects.order_by("-seen_at").values_list("id", flat=True)[:keep]
    )
    deleted, _ = WorkerHeartbeat.objects.exclude(id__in=keep_ids).delete()
    return deleted


def sign_in_lockout_lift(*, account: Account, username: str) -> bool:
    """Let a member of the account sign in again: forget the failed sign-ins of their user
    name, and of the addresses they came from (so the address lockout goes too).
    False when ``username`` is no member of the account."""
    from axes.models import AccessAttempt
    from axes.utils import reset

    if not Membership.objects.filter(account=account, user__username=username).exists():
        return False
    addresses = set(
        AccessAttempt.objects.filter(username=username).values_list("ip_address", flat=True)
    )
    reset(username=username)
    for address in addresses - {None, ""}:
        reset(ip=address)
    return True
