"""The current account of a request, and the decorators that make views account-scoped.

A signed-in user works in one account at a time; its id sits in the session and is
re-checked against the user's memberships on every request, so a removed membership
takes effect at once.
"""

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.shortcuts import redirect, render

from .selectors import membership_for

SESSION_ACCOUNT_KEY = "emhub_account_id"


class CurrentAccountMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.account = None
        request.membership = None
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            account_id = request.session.get(SESSION_ACCOUNT_KEY)
            membership = membership_for(user=user, account_id=account_id)
            if membership is not None:
                request.account = membership.account
                request.membership = membership
            elif account_id is not None:
                request.session.pop(SESSION_ACCOUNT_KEY, None)
        return self.get_response(request)


def current_account(request):
    """Template context: the account and the user's role in it."""
    return {
        "current_account": getattr(request, "account", None),
        "current_membership": getattr(request, "membership", None),
    }


def account_required(view):
    """Signed in and working in an account; otherwise to sign-in or the account picker."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if request.account is None:
            return redirect("emhub:account_pick")
        return view(request, *args, **kwargs)

    return wrapper


def admin_required(view):
    """As account_required, and the user is an admin of the account.

    A marketer gets a plain page (403) that says the page is for admins and who can
    help, inside the hub's own layout, rather than a bare "not found".
    """

    @wraps(view)
    @account_required
    def wrapper(request, *args, **kwargs):
        if not request.membership.is_admin:
            return render(request, "errors/for_admins.html", status=403)
        return view(request, *args, **kwargs)

    return wrapper
