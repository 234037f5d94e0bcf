"""Reads for accounts, memberships and API keys."""

from django.db.models import QuerySet
from django.utils import timezone

from .models import Account, ApiKey, Membership, WorkerHeartbeat, hash_api_key


def membership_for(*, user, account_id) -> Membership | None:
    if account_id is None:
        return None
    return (
        Membership.objects.select_related("account")
        .filter(user=user, account_id=account_id)
        .first()
    )


def memberships_of(*, user) -> QuerySet[Membership]:
    return Membership.objects.select_related("account").filter(user=user).order_by("account__name")


def api_keys_of(*, account: Account) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(account=account).select_related("created_by")


def api_key_by_raw_key(*, raw_key: str) -> ApiKey | None:
    return (
        ApiKey.objects.select_related("account")
        .filter(key_hash=hash_api_key(raw_key), revoked_at__isnull=True)
        .first()
    )


def worker_last_seen() -> WorkerHeartbeat | None:
    return WorkerHeartbeat.objects.order_by("-seen_at").first()


def worker_is_alive(*, within_seconds: int = 90) -> bool:
    beat = worker_last_seen()
    return beat is not None and (timezone.now() - beat.seen_at).total_seconds() < within_seconds


def sign_in_lockouts_of(*, account: Account) -> list[dict]:
    """The account's members who cannot sign in now: locked out by django-axes for their
    user name. [{"username", "failures", "last_attempt", "addresses"}], latest first."""
    from axes.models import AccessAttempt
    from django.conf import settings

    usernames = list(
        Membership.objects.filter(account=account).values_list("user__username", flat=True)
    )
    attempts = AccessAttempt.objects.filter(username__in=usernames)
    if settings.AXES_COOLOFF_TIME:
        attempts = attempts.filter(attempt_time__gte=timezone.now() - settings.AXES_COOLOFF_TIME)
    by_user: dict[str, dict] = {}
    for attempt in attempts.order_by("-attempt_time"):
        entry = by_user.setdefault(
            attempt.username,
            {"username": attempt.username, "failures": 0, "last_attempt": None, "addresses": []},
        )
        entry["failures"] += attempt.failures_since_start
        entry["last_attempt"] = entry["last_attempt"] or attempt.attempt_time
        if attempt.ip_address and attempt.ip_address not in entry["addresses"]:
            entry["addresses"].append(attempt.ip_address)
    return [e for e in by_user.values() if e["failures"] >= settings.AXES_FAILURE_LIMIT]
