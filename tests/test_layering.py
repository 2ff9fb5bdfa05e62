"""The portal's apps stand in layers, and a test keeps them so (the rule in words: docs/architecture.md).

An app imports from its own layer's foundations and everything below, never from above. Within the
foundation and domain layers an app imports a sibling only when `SIBLINGS` names the pair (an arrow,
not both ways). The top layer composes: its apps may import anything, and nothing imports them.
The imports are read from the sources, so a lazy import inside a function counts as much as one at
the top of a module. Inside an app, modules import each other without circles (a lazy import that
closes a circle hides it; `enqueue.py` is how services reach their tasks).
"""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import portal

PORTAL = Path(portal.__file__).parent

# Ground first. An app not yet written may be listed (others are adding some of these).
LAYERS = {
    "ground": {"lib"},
    "foundation": {"audit", "accounts", "events"},
    "domain": {"mailboxes", "certificates", "onboarding", "messaging", "conformance"},
    "top": {"front", "api", "integrations", "alerts", "ops"},
}
# Sibling imports allowed within a layer (importer -> imported). The top layer is free.
SIBLINGS = {
    ("accounts", "audit"),
    ("events", "audit"),  # an event when the audit chain breaks (audit.verify.chain_verified)
    ("certificates", "mailboxes"),
    ("messaging", "mailboxes"),
    ("messaging", "onboarding"),
    ("onboarding", "mailboxes"),
    ("onboarding", "certificates"),
    ("conformance", "mailboxes"),
    ("conformance", "onboarding"),
}
FREE_LAYERS = {"top"}
# Imports that break the rule today, each waiting for the move that removes it (issue 10). This
# list only ever shrinks: a new entry is a new climb, and the test says so.
KNOWN: set[tuple[str, str]] = set()
# Module circles waiting for their move, importer -> imported (the edge left out of the check).
# The keyed audit chain's head publishing reads ChainHead while the model's hash calls the keys:
# moving publish_head/read_heads to their own module (audit/heads.py) removes it.
KNOWN_CIRCLES = {("portal.audit.sealing", "portal.audit.models")}

RANK = {app: rank for rank, apps in enumerate(LAYERS.values()) for app in apps}
LAYER_OF = {app: name for name, apps in LAYERS.items() for app in apps}


def apps() -> list[str]:
    return sorted(p.name for p in PORTAL.iterdir() if (p / "__init__.py").exists())


def imported_names(path: Path) -> list[tuple[int, str]]:
    """(line, dotted name) for every import in one source file, relative ones resolved; for
    `from a import b` both `a` and `a.b` (b may be a module)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = ["portal", *path.relative_to(PORTAL).parent.parts]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this file's package
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return found


def imported_apps(path: Path, app: str) -> list[tuple[int, str]]:
    """(line, app) for every import of another portal app in one source file."""
    known = set(apps())
    found = set()
    for line, name in imported_names(path):
        parts = name.split(".")
        if parts[0] == "portal" and len(parts) > 1 and parts[1] != app and parts[1] in known:
            found.add((line, parts[1]))
    return sorted(found)


def edges() -> dict[tuple[str, str], list[str]]:
    found: dict[tuple[str, str], list[str]] = {}
    for app in apps():
        for path in sorted((PORTAL / app).rglob("*.py")):
            for line, other in imported_apps(path, app):
                where = f"{path.relative_to(PORTAL.parent)}:{line}"
                found.setdefault((app, other), []).append(where)
    return found


def broken(importer: str, imported: str) -> str | None:
    """Why importer -> imported breaks the rule, or None."""
    if importer not in RANK or imported not in RANK:
        return None  # checked by test_it_places_every_app_in_a_layer
    if RANK[imported] > RANK[importer]:
        return f"{LAYER_OF[importer]} app imports the {LAYER_OF[imported]} layer above it"
    if RANK[imported] == RANK[importer] and LAYER_OF[importer] not in FREE_LAYERS:
        if (importer, imported) not in SIBLINGS:
            return f"sibling {LAYER_OF[importer]} apps, a pair SIBLINGS does not list"
    return None


def test_it_places_every_app_in_a_layer():
    assert [app for app in apps() if app not in RANK] == [], (
        "Add the new app to LAYERS in tests/test_layering.py (and docs/architecture.md)."
    )


def test_it_finds_imports_between_apps():
    found = edges()
    assert ("messaging", "mailboxes") in found and ("messaging", "audit") in found
    assert broken("audit", "messaging") and broken("mailboxes", "conformance")
    assert broken("lib", "audit") and not broken("messaging", "lib")


def test_no_app_imports_upwards_or_an_unlisted_sibling():
    offences = {
        f"{importer} -> {imported} ({why}): {', '.join(where)}"
        for (importer, imported), where in edges().items()
        if (why := broken(importer, imported)) and (importer, imported) not in KNOWN
    }
    assert sorted(offences) == [], (
        "Move the code to the layer it belongs in (docs/architecture.md), or, for two domain apps "
        "that really depend on each other one way, add the pair to SIBLINGS."
    )


def test_the_known_exceptions_still_exist():
    """An exception removed by a move comes off KNOWN, so it cannot quietly come back."""
    found = edges()
    assert sorted(pair for pair in KNOWN if pair not in found or not broken(*pair)) == []


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PORTAL.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_no_module_imports_itself_through_a_circle():
    paths = [p for p in PORTAL.rglob("*.py") if "migrations" not in p.parts]
    modules = {module_name(path): path for path in paths}
    graph = {
        name: {
            other
            for _, other in imported_names(path)
            if other in modules and other != name and (name, other) not in KNOWN_CIRCLES
        }
        for name, path in modules.items()
    }
    gone = [edge for edge in KNOWN_CIRCLES if edge[1] not in _imports(modules[edge[0]])]
    assert gone == [], "A known circle is gone: take it off KNOWN_CIRCLES."
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as error:
        raise AssertionError(f"Modules import each other in a circle: {error.args[1]}") from None


def _imports(path: Path) -> set[str]:
    return {name for _, name in imported_names(path)}
