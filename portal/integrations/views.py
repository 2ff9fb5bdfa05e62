"""Portal pages for routes and destinations: list, create, edit, "test this destination", replay."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, Prefetch, Q
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from portal.accounts.reach import get_within_reach, mailboxes_for, within_reach
from portal.audit.services import Actor, record
from portal.lib import payloads
from portal.lib.http import client_ip, permission_required

from .forms import DestinationForm, RoutePageForm
from .links import LinkRefused, read_link
from .models import (
    Delivery,
    DeliveryState,
    Destination,
    DestinationKind,
    Route,
    RouteDestination,
)
from .services import delivery_replay, destination_probe, route_replay_dead_letters, route_save


@permission_required("integrations.view_route", "integrations.view_destination")
def integration_list(request):
    steps = RouteDestination.objects.select_related("destination")
    routes = (
        within_reach(Route.objects.all(), request.user)
        .select_related("mailbox")
        .prefetch_related(Prefetch("steps", queryset=steps))
        .annotate(
            dead_letters=Count(
                "deliveries", filter=Q(deliveries__state=DeliveryState.DEAD_LETTERED)
            )
        )
    )
    context = {"routes": routes, "destinations": Destination.objects.within_reach(request.user)}
    return render(request, "integrations/list.html", context)


@permission_required("integrations.view_destination", "integrations.change_destination")
def destination_edit(request, pk: int | None = None):
    destinations = Destination.objects.within_reach(request.user)
    destination = get_within_reach(destinations, pk=pk) if pk else None
    if destination is None and not request.user.has_perm("integrations.add_destination"):
        raise PermissionDenied
    form = DestinationForm(request.POST or None, instance=destination, user=request.user)
    if request.method == "POST" and form.is_valid():
        destination = form.save()
        messages.success(request, f"Saved {destination.name}.")
        return redirect("integrations:list")
    return render(
        request, "integrations/destination_form.html", {"form": form, "destination": destination}
    )


@permission_required("integrations.change_destination")
@require_POST
def destination_test_view(request, pk: int):
    destination = get_within_reach(Destination.objects.within_reach(request.user), pk=pk)
    ok, text = destination_probe(destination=destination, actor=Actor.person(request))
    (messages.success if ok else messages.error)(request, f"{destination.name}: {text}")
    return redirect("integrations:list")


@permission_required("integrations.view_route", "integrations.change_route")
def route_edit(request, pk: int | None = None):
    route = get_within_reach(within_reach(Route.objects.all(), request.user), pk=pk) if pk else None
    if route is None and not request.user.has_perm("integrations.add_route"):
        raise PermissionDenied
    form = RoutePageForm(request.POST or None, instance=route)
    form.fields["mailbox"].queryset = mailboxes_for(request.user)
    for name in form.fields:
        if name.startswith("step_"):
            form.fields[name].queryset = Destination.objects.within_reach(request.user)
    if request.method == "POST" and form.is_valid():
        route = route_save(
            route=form.save(commit=False), destinations=form.cleaned_data["destinations"]
        )
        messages.success(request, f"Saved the route {route.name}.")
        return redirect("integrations:list")
    return render(request, "integrations/route_form.html", {"form": form, "route": route})


@permission_required("integrations.change_delivery")
@require_POST
def route_replay_view(request, pk: int):
    route = get_within_reach(within_reach(Route.objects.all(), request.user), pk=pk)
    count = route_replay_dead_letters(route=route, actor=Actor.person(request))
    messages.success(
        request,
        f"Replayed {count} dead-lettered deliver{'y' if count == 1 else 'ies'} of {route.name}.",
    )
    return redirect("integrations:list")


@permission_required("integrations.change_delivery")
@require_POST
def delivery_replay_view(request, pk: int):
    with transaction.atomic():
        deliveries = within_reach(Delivery.objects.all(), request.user, mailbox="message__mailbox")
        delivery = get_within_reach(
            deliveries.select_for_update().select_related("destination"), pk=pk
        )
        if delivery.state == DeliveryState.DELIVERED:
            messages.error(
                request, "This delivery was delivered already: there is nothing to replay."
            )
        else:
            delivery_replay(delivery=delivery, actor=Actor.person(request))
            messages.success(
                request, f"Delivery to {delivery.destination.name} replayed from its first attempt."
            )
    return redirect("messaging:detail", delivery.message_id)


@never_cache
@require_GET
def payload_link_view(request, token: str):
    """A webhook receiver fetches a payload by the signed link in its notice (no account: the
    link is the credential, checked here, and each fetch is audited)."""
    try:
        link = read_link(token)
        delivery = _linked_delivery(link)
        handle = payloads.open_payload(delivery.message.payload.name)
    except LinkRefused as exc:
        return HttpResponse(str(exc), status=exc.status, content_type="text/plain; charset=utf-8")
    except (FileNotFoundError, payloads.PayloadUnreadable):
        text = "The payload cannot be read from storage: tell the NeoMesh administrators."
        return HttpResponse(text, status=500, content_type="text/plain; charset=utf-8")
    message = delivery.message
    actor = Actor.system(f"payload link for {delivery.destination.name}", ip=client_ip(request))
    record(
        actor=actor,
        action="delivery.payload_fetched",
        obj=message,
        detail=f"{message.size_bytes} bytes",
    )
    response = StreamingHttpResponse(_blocks(handle), content_type="application/octet-stream")
    response["Content-Length"] = str(message.size_bytes or 0)
    if message.payload_sha256:
        response["X-Payload-SHA256"] = message.payload_sha256
    return response


def _linked_delivery(link) -> Delivery:
    delivery = (
        Delivery.objects.select_related("destination", "message")
        .filter(message_id=link.message_id, destination_id=link.destination_id)
        .first()
    )
    if delivery is None or delivery.destination.kind != DestinationKind.WEBHOOK:
        raise LinkRefused(404, "There is no such delivery.")
    if not delivery.destination.enabled:
        raise LinkRefused(403, "This destination is disabled: its links no longer work.")
    if not delivery.message.payload.name or delivery.message.payload_purged_at:
        raise LinkRefused(410, "The payload is no longer stored (retention purged it).")
    return delivery


def _blocks(handle, size: int = 1024 * 1024):
    with handle:
        while block := handle.read(size):
            yield block
