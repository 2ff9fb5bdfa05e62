"""Portal pages for API tokens: list, create (the secret shown once), expire, revoke."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from portal.accounts.factors import step_up_required
from portal.audit.services import Actor
from portal.lib.http import permission_required

from .forms import TokenForm
from .models import ApiToken
from .services import token_create, token_expire, token_revoke


@permission_required("api.view_apitoken")
def token_list(request):
    tokens = (
        ApiToken.objects.within_reach(request.user)
        .select_related("owner")
        .prefetch_related("grants__mailboxes")
    )
    return render(request, "api/token_list.html", {"tokens": tokens})


@never_cache
@permission_required("api.add_apitoken")
@step_up_required
def token_new(request):
    form = TokenForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        token, secret = token_create(
            name=data["name"],
            owner=data["owner"],
            grants=data["grants"],
            expires_at=form.expires_at(),
            rate_per_minute=data["rate_per_minute"],
            created_by=request.user,
            actor=Actor.person(request),
        )
        # Rendered, not redirected: the secret is on this one response and nowhere else.
        return render(request, "api/token_created.html", {"token": token, "secret": secret})
    return render(request, "api/token_form.html", {"form": form})


@permission_required("api.change_apitoken")
@require_POST
def token_revoke_view(request, pk: int):
    token = get_object_or_404(ApiToken.objects.within_reach(request.user), pk=pk)
    token = token_revoke(token=token, actor=Actor.person(request))
    messages.success(request, f"{token} is revoked: it no longer works.")
    return redirect("api_tokens:list")


@permission_required("api.change_apitoken")
@require_POST
def token_expire_view(request, pk: int):
    token = get_object_or_404(ApiToken.objects.within_reach(request.user), pk=pk)
    token = token_expire(token=token, actor=Actor.person(request))
    messages.success(request, f"{token} has expired: it no longer works.")
    return redirect("api_tokens:list")
