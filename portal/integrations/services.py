"""Deliveries: planned when a message is stored (the `message.received` event), run on the workers
after the acknowledgement, retried with backoff, dead-lettered after a limit, replayed by a person."""

from __future__ import annotations

import os
import socket
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from portal.audit.services import Actor, record

from . import destinations
from .enqueue import enqueue_delivery
from .models import Delivery, DeliveryState, DestinationKind, Route, RouteDestination

# A worker running a delivery holds it this long; one that dies lets it go when this passes.
LEASE = timedelta(minutes=10)


def max_attempts() -> int:
    return getattr(settings, "INTEGRATIONS_DELIVERY_MAX_ATTEMPTS", 8)


def backoff(attempts: int) -> timedelta:
    """30 s doubling, at most an hour."""
    return timedelta(seconds=min(3600, 30 * 2 ** max(0, attempts - 1)))


@transaction.atomic
def route_save(*, route: Route, destinations: list) -> Route:
    """Save a route and its destinations in this order (each change is audited by auditlog)."""
    route.save()
    wanted = [d.pk for d in destinations]
    route.steps.exclude(destination_id__in=wanted).delete()
    for position, destination in enumerate(destinations):
        RouteDestination.objects.update_or_create(
            route=route, destination=destination, defaults={"position": position}
        )
    return route


def route_for(message) -> Route | None:
    """The most specific enabled route of the message's mailbox, workflow and type (or none)."""
    routes = [
        route
        for route in Route.objects.filter(
            mailbox_id=message.mailbox_id, enabled=True, message_type=message.message_type
        )
        if route.matches(message.workflow_id or "")
    ]
    return max(routes, key=lambda route: (route.specificity(), -route.pk), default=None)


@transaction.atomic
def deliveries_plan(*, message) -> list[Delivery]:
    """One pending delivery per destination of the message's route; none when no route matches
    (the message is held for the API). Safe to call twice."""
    route = route_for(message)
    if route is None:
        return []
    planned = []
    for step in route.steps.select_related("destination").filter(destination__enabled=True):
        delivery, created = Delivery.objects.get_or_create(
            message_id=message.pk, destination=step.destination, defaults={"route": route}
        )
        if created:
            planned.append(delivery)
    for delivery in planned:
        _enqueue_on_commit(delivery.pk)
    return planned


def deliveries_plan_for_event(event) -> None:
    """The consumer of `message.received` (a data message stored) and `message.ndr` (a report
    stored, for REPORT routes): plan the deliveries of the received message it names."""
    from portal.messaging.models import Direction, Message

    if event.kind == "message.ndr":
        pk = (event.data or {}).get("report_id")  # the event names the message it concerns
    else:
        pk = event.message_id
    if not pk:
        return
    message = Message.objects.filter(pk=pk, direction=Direction.INBOUND).first()
    if message is not None:
        deliveries_plan(message=message)


def _enqueue_on_commit(pk: int) -> None:
    transaction.on_commit(lambda: enqueue_delivery(pk))


def _worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def delivery_run(*, delivery_id: int) -> str:
    """Run one due delivery, if no other worker holds it. Returns its state afterwards."""
    now = timezone.now()
    claimed = Delivery.objects.due(now).filter(pk=delivery_id).update(next_attempt_at=now + LEASE)
    if not claimed:
        return "not due"
    delivery = Delivery.objects.select_related("destination", "message__mailbox").get(
        pk=delivery_id
    )
    try:
        location = destinations.deliver(delivery.destination, delivery.message)
    except destinations.DeliveryFailed as exc:
        return _failed(delivery, str(exc))
    except Exception as exc:  # noqa: BLE001 - one bad delivery never stops the rest
        return _failed(
            delivery, f"An unexpected error stopped the delivery ({type(exc).__name__})."
        )
    return _delivered(delivery, location)


@transaction.atomic
def _delivered(delivery: Delivery, location: str) -> str:
    now = timezone.now()
    Delivery.objects.filter(pk=delivery.pk).update(
        state=DeliveryState.DELIVERED,
        attempts=delivery.attempts + 1,
        delivered_at=now,
        location=location[:1000],
        last_error="",
    )
    message = delivery.message
    message.add_event("note", f"Delivered to {delivery.destination.name}: {location}"[:2000])
    record(
        actor=Actor.worker(),
        action="delivery.delivered",
        obj=message,
        detail=f"{delivery.destination.name}: {location}",
    )
    if delivery.destination.kind != DestinationKind.HELD:
        others = Delivery.objects.filter(message_id=message.pk).exclude(pk=delivery.pk)
        if (
            not others.exclude(state=DeliveryState.DELIVERED).exists()
            and not others.filter(destination__kind=DestinationKind.HELD).exists()
        ):
            from portal.messaging.services import payload_confirm

            names = ", ".join(
                Delivery.objects.filter(message_id=message.pk).values_list(
                    "destination__name", flat=True
                )
            )
            payload_confirm(message=message, source=f"delivered to {names}")
    return DeliveryState.DELIVERED


@transaction.atomic
def _failed(delivery: Delivery, reason: str) -> str:
    attempts = delivery.attempts + 1
    dead = attempts >= max_attempts()
    state = DeliveryState.DEAD_LETTERED if dead else DeliveryState.FAILED
    Delivery.objects.filter(pk=delivery.pk).update(
        state=state,
        attempts=attempts,
        last_error=reason[:2000],
        next_attempt_at=timezone.now() + backoff(attempts),
    )
    text = f"Delivery to {delivery.destination.name} failed (attempt {attempts}): {reason}"
    if dead:
        text += " Dead-lettered: it will not be tried again until a person replays it."
    delivery.message.add_event("note", text[:2000])
    record(actor=Actor.worker(), action=f"delivery.{state}", obj=delivery.message, detail=text)
    return state


def deliveries_sweep(*, limit: int = 500) -> int:
    """Scheduled every minute: enqueue each due delivery (retries, and any a dead worker held)."""
    due = list(
        Delivery.objects.due().order_by("next_attempt_at").values_list("pk", flat=True)[:limit]
    )
    for pk in due:
        enqueue_delivery(pk)
    return len(due)


def _replay(delivery: Delivery) -> None:
    Delivery.objects.filter(pk=delivery.pk).update(
        state=DeliveryState.PENDING, attempts=0, next_attempt_at=timezone.now(), last_error=""
    )
    _enqueue_on_commit(delivery.pk)


@transaction.atomic
def delivery_replay(*, delivery: Delivery, actor: Actor) -> Delivery:
    """Try a failed or dead-lettered delivery again, from its first attempt (audited)."""
    if delivery.state == DeliveryState.DELIVERED:
        raise ValueError("This delivery was delivered already.")
    _replay(delivery)
    detail = (
        f"Replayed delivery #{delivery.pk} to {delivery.destination.name} ({delivery.last_error})"
    )
    record(actor=actor, action="delivery.replayed", obj=delivery.message, detail=detail)
    delivery.refresh_from_db()
    return delivery


@transaction.atomic
def route_replay_dead_letters(*, route: Route, actor: Actor) -> int:
    """Replay every dead-lettered delivery of a route (audited once, with the count)."""
    dead = list(Delivery.objects.dead_letters().filter(route=route).select_for_update())
    for delivery in dead:
        _replay(delivery)
    record(
        actor=actor,
        action="route.dead_letters_replayed",
        obj=route,
        detail=f"Replayed {len(dead)} dead-lettered deliveries",
    )
    return len(dead)


def destination_probe(*, destination, actor: Actor) -> tuple[bool, str]:
    """Write and remove a probe at the destination; (worked, what happened) — audited."""
    try:
        ok, text = True, destinations.probe(destination)
    except destinations.DeliveryFailed as exc:
        ok, text = False, str(exc)
    except Exception as exc:  # noqa: BLE001 - a person sees the reason, never a traceback
        ok, text = False, f"The probe failed unexpectedly ({type(exc).__name__})."
    record(actor=actor, action="destination.probed", obj=destination, detail=text)
    return ok, text
