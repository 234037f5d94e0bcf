from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from .dashboard import dashboard_figures
from .forms import AccountPickForm, ApiKeyCreateForm, SignInForm
from .selectors import api_keys_of, memberships_of, sign_in_lockouts_of, worker_last_seen
from .services import api_key_issue, api_key_revoke, sign_in_lockout_lift
from .tenancy import SESSION_ACCOUNT_KEY, account_required, admin_required


class SignInView(auth_views.LoginView):
    template_name = "emhub/sign_in.html"
    authentication_form = SignInForm
    redirect_authenticated_user = True

    def form_valid(self, form):
        response = super().form_valid(form)
        memberships = list(memberships_of(user=form.get_user())[:2])
        if len(memberships) == 1:
            self.request.session[SESSION_ACCOUNT_KEY] = memberships[0].account_id
        return response


class SignOutView(auth_views.LogoutView):
    pass


@login_required
def account_pick(request):
    memberships = memberships_of(user=request.user)
    if request.method == "POST":
        form = AccountPickForm(request.POST)
        if form.is_valid():
            chosen = memberships.filter(account_id=form.cleaned_data["account_id"]).first()
            if chosen is not None:
                request.session[SESSION_ACCOUNT_KEY] = chosen.account_id
                messages.success(request, f"You are working in {chosen.account.name}.")
                return redirect("emhub:home")
        messages.error(request, "Choose one of your accounts.")
    return render(request, "emhub/account_pick.html", {"memberships": memberships})


@account_required
def home(request):
    return render(
        request,
        "emhub/home.html",
        {"heartbeat": worker_last_seen(), "figures": dashboard_figures(account=request.account)},
    )


@admin_required
def api_key_list(request):
    form = ApiKeyCreateForm()
    new_key = None
    if request.method == "POST":
        form = ApiKeyCreateForm(request.POST)
        if form.is_valid():
            issued = api_key_issue(
                account=request.account, name=form.cleaned_data["name"], created_by=request.user
            )
            new_key = issued.raw_key
            form = ApiKeyCreateForm()
            messages.success(request, "Key created. Copy it now: it will not be shown again.")
    page = Paginator(api_keys_of(account=request.account), 25).get_page(request.GET.get("page"))
    return render(
        request,
        "emhub/apikey_list.html",
        {"form": form, "page": page, "new_key": new_key},
    )


@admin_required
@require_POST
def api_key_revoke_view(request, key_id: int):
    api_key = get_object_or_404(api_keys_of(account=request.account), pk=key_id)
    api_key_revoke(api_key=api_key)
    messages.success(
        request, f"Key “{api_key.name}” revoked. Calls using it are refused from now on."
    )
    return redirect(reverse("emhub:api_keys"))


@admin_required
def sign_in_lockouts(request):
    if request.method == "POST":
        username = request.POST.get("username", "")[:150]
        if sign_in_lockout_lift(account=request.account, username=username):
            messages.success(request, f"{username} can sign in again.")
        else:
            messages.error(request, "That user is not a member of this account.")
        return redirect("emhub:sign_in_lockouts")
    return render(
        request,
        "emhub/sign_in_lockouts.html",
        {"lockouts": sign_in_lockouts_of(account=request.account)},
    )


def not_found(request, exception=None):
    raise Http404
