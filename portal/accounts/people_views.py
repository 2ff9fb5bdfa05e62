"""People management for admins: who has which roles and factor, invite, roles, disable, reset."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.models import User
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from portal.audit.services import Actor, record
from portal.lib.http import permission_required

from . import factors, people
from .forms import InviteForm, PasswordSetForm, ReachForm, ReasonForm, RolesForm

VIEW = "auth.view_user"
CHANGE = "auth.change_user"


@permission_required(VIEW)
def person_list(request):
    return render(request, "accounts/people.html", {"people": people.people_with_status()})


@permission_required(VIEW)
def person_detail(request, pk: int):
    person = get_object_or_404(people.people_list(), pk=pk)
    roles = [group.name for group in person.groups.all()]
    context = {
        "person": person,
        "roles_form": RolesForm(initial={"roles": roles}),
        "reach_form": ReachForm(initial=_reach_initial(person)),
        "reach": people.reach_summary(person),
        "reason_form": ReasonForm(),
        "factor": factors.factor_status(person),
        "codes_left": factors.recovery_codes_left(person),
    }
    return render(request, "accounts/person.html", context)


def _reach_initial(person) -> dict:
    memberships = list(person.memberships.all())
    return {
        "every_organisation": person.every_organisation,
        "organisations": [m.organisation for m in memberships if not m.mailboxes.all()],
        "mailboxes": [mailbox for m in memberships for mailbox in m.mailboxes.all()],
    }


@permission_required(CHANGE)
@require_POST
def person_reach(request, pk: int):
    person = get_object_or_404(User, pk=pk)
    form = ReachForm(request.POST)
    if form.is_valid():
        people.person_reach_set(
            user=person,
            every=form.cleaned_data["every_organisation"],
            organisations=form.cleaned_data["organisations"],
            mailboxes=form.cleaned_data["mailboxes"],
            actor=Actor.person(request),
        )
        messages.success(request, f"Reach of {person.username} saved.")
    else:
        messages.error(request, "Choose organisations and mailboxes from the lists.")
    return redirect("accounts:person", pk=person.pk)


@never_cache
@permission_required("auth.add_user", CHANGE)
def person_invite(request):
    form = InviteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        person = people.person_invite(
            username=data["username"],
            email=data["email"],
            first_name=data["first_name"],
            last_name=data["last_name"],
            groups=form.groups(),
            actor=Actor.person(request),
        )
        url = request.build_absolute_uri(people.invite_path(person))
        if people.invite_send(user=person, url=url):
            messages.success(
                request, f"{person.username} is invited: the link went to {person.email}."
            )
            return redirect("accounts:person", pk=person.pk)
        # Rendered, not redirected: the link is on this one response and nowhere else.
        context = {"person": person, "url": url, "days": settings.PEOPLE_INVITE_DAYS}
        return render(request, "accounts/person_invited.html", context)
    context = {"form": form, "invite_email": settings.PEOPLE_INVITE_EMAIL}
    status = 400 if form.errors else 200
    return render(request, "accounts/person_invite.html", context, status=status)


@permission_required(CHANGE)
@require_POST
def person_roles(request, pk: int):
    person = get_object_or_404(User, pk=pk)
    form = RolesForm(request.POST)
    if form.is_valid():
        people.person_roles_set(user=person, groups=form.groups(), actor=Actor.person(request))
        messages.success(request, f"Roles of {person.username} saved.")
    else:
        messages.error(request, "Choose roles from the list.")
    return redirect("accounts:person", pk=person.pk)


@permission_required(CHANGE)
@require_POST
def person_active(request, pk: int):
    person = get_object_or_404(User, pk=pk)
    active = request.POST.get("active") == "1"
    form = ReasonForm(request.POST)
    if not active and not form.is_valid():
        messages.error(request, "Give a reason to disable an account: it goes in the audit trail.")
        return redirect("accounts:person", pk=person.pk)
    reason = form.cleaned_data.get("reason", "") if form.is_valid() else ""
    try:
        people.person_active_set(
            user=person, active=active, actor=Actor.person(request), reason=reason
        )
    except people.PeopleError as exc:
        messages.error(request, str(exc))
    else:
        state = "enabled" if active else "disabled: they cannot sign in"
        messages.success(request, f"{person.username} is {state}.")
    return redirect("accounts:person", pk=person.pk)


@permission_required(CHANGE)
@require_POST
def person_factor_reset(request, pk: int):
    person = get_object_or_404(User, pk=pk)
    form = ReasonForm(request.POST)
    if not form.is_valid():
        messages.error(
            request, "Give a reason to reset a second factor: it goes in the audit trail."
        )
        return redirect("accounts:person", pk=person.pk)
    factors.factor_reset(
        user=person, actor=Actor.person(request), reason=form.cleaned_data["reason"]
    )
    messages.warning(
        request,
        f"Second factor of {person.username} removed: they set up a new one at next sign-in.",
    )
    return redirect("accounts:person", pk=person.pk)


class PasswordSetView(auth_views.PasswordResetConfirmView):
    """The invitation's one-time link: choose a password, then sign in (and set up a factor)."""

    template_name = "accounts/password_set.html"
    form_class = PasswordSetForm
    success_url = reverse_lazy("accounts:login")

    def form_valid(self, form):
        response = super().form_valid(form)
        actor = Actor.person(self.request, user=form.user)
        record(actor=actor, action="person.password_set", obj=form.user)
        messages.success(self.request, "Password set: sign in with it now.")
        return response


password_set = PasswordSetView.as_view()
