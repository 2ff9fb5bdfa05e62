"""The admin pages of routes, destinations and deliveries: "test this destination", replay."""

from __future__ import annotations

from django.contrib import admin, messages

from portal.audit.services import Actor

from . import services
from .forms import DestinationForm, RouteForm
from .models import (
    Delivery,
    DeliveryState,
    Destination,
    Intake,
    IntakeFile,
    Route,
    RouteDestination,
)


@admin.register(Destination)
class DestinationAdmin(admin.ModelAdmin):
    form = DestinationForm
    list_display = ["name", "kind", "enabled", "updated_at"]
    actions = ["test_destination"]

    @admin.action(description="Test this destination (write and remove a probe)")
    def test_destination(self, request, queryset):
        for destination in queryset:
            ok, text = services.destination_probe(
                destination=destination, actor=Actor.person(request)
            )
            self.message_user(
                request, f"{destination.name}: {text}", messages.SUCCESS if ok else messages.ERROR
            )


class RouteDestinationInline(admin.TabularInline):
    model = RouteDestination
    extra = 1


@admin.register(Route)
class RouteAdmin(admin.ModelAdmin):
    form = RouteForm
    list_display = ["name", "mailbox", "workflow_pattern", "message_type", "enabled"]
    inlines = [RouteDestinationInline]
    actions = ["replay_dead_letters"]

    @admin.action(description="Replay all dead letters of these routes")
    def replay_dead_letters(self, request, queryset):
        count = sum(
            services.route_replay_dead_letters(route=route, actor=Actor.person(request))
            for route in queryset
        )
        self.message_user(request, f"Replayed {count} dead-lettered deliveries.")


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "message",
        "destination",
        "state",
        "attempts",
        "next_attempt_at",
        "last_error",
    ]
    list_filter = ["state", "destination"]
    readonly_fields = [f.name for f in Delivery._meta.fields]
    actions = ["replay"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Replay these deliveries")
    def replay(self, request, queryset):
        count = 0
        for delivery in queryset.exclude(state=DeliveryState.DELIVERED):
            services.delivery_replay(delivery=delivery, actor=Actor.person(request))
            count += 1
        self.message_user(request, f"Replayed {count} deliveries.")


@admin.register(Intake)
class IntakeAdmin(admin.ModelAdmin):
    list_display = ["path", "mailbox", "enabled"]


@admin.register(IntakeFile)
class IntakeFileAdmin(admin.ModelAdmin):
    list_display = ["name", "local_id", "mailbox", "state", "message", "claimed_at"]
    list_filter = ["state"]
    readonly_fields = [f.name for f in IntakeFile._meta.fields]

    def has_add_permission(self, request):
        return False
