"""Answer the load balancer's and Prometheus's probes before the rest of the middleware runs."""

from __future__ import annotations

from . import views


class OpsEndpointsMiddleware:
    """First in MIDDLEWARE: serves /healthz and /metrics whatever the Host header or scheme.

    A load balancer checks each backend by its IP address over plain HTTP, and Prometheus scrapes
    each one the same way. Further down, CommonMiddleware would refuse that Host (400,
    DisallowedHost) and SecurityMiddleware would redirect to HTTPS (301). Neither view builds a URL
    from the Host header, so skipping the check is safe; /metrics keeps its own token guard.
    """

    endpoints = {"/healthz": views.healthz, "/metrics": views.metrics}

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        view = self.endpoints.get(request.path_info)
        if view is None:
            return self.get_response(request)
        return view(request)
