from __future__ import annotations


def navigation(request) -> dict:
    """The left navigation: only the items the signed-in user may use."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_items": []}
    items = [("Dashboard", "dashboard:home", True)]
    return {"nav_items": [(label, name) for label, name, allowed in items if allowed]}
