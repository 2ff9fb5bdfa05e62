"""Access control with the second factor: a privileged person signed in with only a password reaches
no page of the portal but the factor's own; the factor and people pages in the persona matrix."""

from __future__ import annotations

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tests.accounts.access import PERSONAS, as_persona, assert_access

pytestmark = [pytest.mark.django_db, pytest.mark.factor_unproven]

OPEN = {"accounts:login", "accounts:logout", "accounts:factor_enrol", "accounts:factor_verify"}


SAMPLE = {"IntConverter": 1, "UUIDConverter": "00000000-0000-0000-0000-000000000001"}


def portal_urls() -> list[tuple[str, str]]:
    """(name, path) of every named portal URL, its arguments filled with sample values (the
    middleware answers before any view looks them up)."""
    found = []

    def walk(patterns, namespace):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, pattern.namespace or namespace)
            elif isinstance(pattern, URLPattern) and pattern.name:
                name = f"{namespace}:{pattern.name}" if namespace else pattern.name
                if name.startswith("admin:") or "(?P<" in str(pattern.pattern):
                    continue
                kwargs = {
                    key: SAMPLE.get(type(converter).__name__, "x")
                    for key, converter in pattern.pattern.converters.items()
                }
                found.append((name, reverse(name, kwargs=kwargs)))

    walk(get_resolver().url_patterns, "")
    return sorted(set(found))


def test_a_password_alone_opens_no_page_to_a_privileged_person(client, admin_user):
    urls = portal_urls()
    assert len(urls) > 80  # the walk is not vacuous
    enrol = reverse("accounts:factor_enrol")
    client.force_login(admin_user)
    for name, path in urls:
        if name in OPEN or path in ("/healthz", "/metrics", "/healthz/", "/metrics/"):
            continue
        for method in ("get", "post"):
            response = getattr(client, method)(path)
            assert response.status_code == 302, (name, method, response.status_code)
            assert response["Location"].startswith(enrol), (name, method)
    # The Django admin too.
    assert client.get(reverse("admin:index"))["Location"].startswith(enrol)


@pytest.mark.parametrize("persona", PERSONAS)
def test_the_own_factor_page_is_for_anyone_signed_in(client, request, persona):
    from tests.factors import prove_factor

    user = as_persona(client, request, persona)
    if user is not None:
        prove_factor(client, user)
    assert_access(
        client.get(reverse("accounts:factor_home")), persona, set(PERSONAS) - {"anonymous"}
    )
    for name in ("accounts:people", "accounts:person_invite"):
        assert_access(client.get(reverse(name)), persona, {"superuser"})
