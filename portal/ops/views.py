"""Health and metrics endpoints for load balancers and Prometheus (no login; see each for access)."""

from __future__ import annotations

import hmac
import ipaddress
import logging

from django.conf import settings
from django.db import connection
from django.http import HttpResponse, HttpResponseForbidden, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from portal.lib.http import client_ip
from portal.messaging.models import Heartbeat

from .metrics import NeoMeshCollector

log = logging.getLogger(__name__)
WORKER_STALE_AFTER_SECONDS = 180


def _check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return "ok"


def _check_broker() -> str:
    from django_q.brokers import get_broker

    broker = get_broker()
    if not broker.ping():
        raise RuntimeError("broker did not answer")
    return "ok"


def _check_worker() -> str:
    beat = Heartbeat.objects.order_by("-at").first()
    if beat is None:
        raise RuntimeError("no worker has run yet")
    age = (timezone.now() - beat.at).total_seconds()
    if age > WORKER_STALE_AFTER_SECONDS:
        raise RuntimeError(f"last worker heartbeat {int(age)} s ago")
    return f"ok ({int(age)} s ago)"


def _public_reason(exc: Exception) -> str:
    """Our own findings in full; a driver's error (host names, ports) only in the log."""
    if type(exc) is RuntimeError:
        return str(exc)
    log.warning("Health check failed: %r", exc)
    return type(exc).__name__


@never_cache
@require_safe
def healthz(request):
    """200 when the database and broker answer; 503 otherwise.

    The worker heartbeat is reported but only fails the check with `?strict=1`: a web node should
    not leave the load balancer because the workers (on other hosts) are down.
    """
    checks, healthy = {}, True
    strict = request.GET.get("strict") == "1"
    for name, check, required in (
        ("database", _check_database, True),
        ("broker", _check_broker, True),
        ("worker", _check_worker, strict),
    ):
        try:
            checks[name] = check()
        except Exception as exc:  # noqa: BLE001 - any failure is reported, never raised
            checks[name] = f"failing: {_public_reason(exc)}"
            healthy = healthy and not required
    return JsonResponse(
        {"status": "ok" if healthy else "failing", **checks}, status=200 if healthy else 503
    )


def _from_allowed_network(request) -> bool:
    try:
        # The same trusted client address the audit trail uses (TRUSTED_PROXY_COUNT).
        address = ipaddress.ip_address(client_ip(request) or "")
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(net) for net in settings.METRICS_ALLOWED_NETWORKS)


def _metrics_refusal(request) -> str | None:
    """Why this request may not read the metrics, or None when it may."""
    token = settings.METRICS_TOKEN
    if token:
        supplied = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if hmac.compare_digest(supplied.encode(), token.encode()):
            return None
        return "Metrics need the bearer token: Authorization: Bearer <METRICS_TOKEN>.\n"
    if settings.METRICS_REQUIRE_TOKEN:
        # Behind a reverse proxy every request comes from the proxy's address: a network rule
        # would let anyone through, so production serves metrics only with a token.
        return "Metrics are off: production mode requires METRICS_TOKEN to be set.\n"
    if _from_allowed_network(request):
        return None
    return "Metrics need the bearer token or an address in METRICS_ALLOWED_NETWORKS.\n"


@never_cache
@require_safe
def metrics(request):
    """Prometheus metrics, for the bearer token (or, in development only, an allowed network)."""
    refusal = _metrics_refusal(request)
    if refusal:
        return HttpResponseForbidden(refusal, content_type="text/plain")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NeoMeshCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
