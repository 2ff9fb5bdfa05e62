"""django-auditlog's middleware, told where a request really came from."""

from __future__ import annotations

from auditlog.middleware import AuditlogMiddleware

from portal.lib.http import client_ip


class AuditMiddleware(AuditlogMiddleware):
    """Notes the signed-in user and the trusted client address for each model change.

    django-auditlog's own version takes the first `X-Forwarded-For` entry, which any client can
    write (a spoofed address sealed into the chain, or a value the database refuses: every audited
    change a 500), and `X-Forwarded-Port` the same way. Here the address is the one every audit
    record uses, and the port, which nothing reads, is left out.
    """

    @staticmethod
    def _get_remote_addr(request):
        return client_ip(request)

    @staticmethod
    def _get_remote_port(request):
        return None
