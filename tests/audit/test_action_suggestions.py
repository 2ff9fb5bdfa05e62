"""The trail's action filter suggests every action the portal writes (so none is hard to find)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from portal.audit.forms import KNOWN_ACTIONS

PORTAL = Path(__file__).resolve().parents[2] / "portal"
ACTION = re.compile(r"^[a-z_]+\.[a-z_]+$")  # not argparse's action="store_true"


def _written_actions() -> set[str]:
    """Literal actions passed as `action="..."`, or as the second argument of an `_audit(...)`."""
    found = set()
    for path in PORTAL.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if not isinstance(node, ast.Call):
                continue
            values = [k.value for k in node.keywords if k.arg == "action"]
            name = getattr(node.func, "id", getattr(node.func, "attr", ""))
            if name == "_audit" and len(node.args) >= 2:
                values.append(node.args[1])
            found |= {
                v.value for v in values if isinstance(v, ast.Constant) and isinstance(v.value, str)
            }
    return {action for action in found if ACTION.match(action)}


def test_the_scan_finds_the_actions_it_should():
    written = _written_actions()
    assert {"message.accepted", "auth.login", "onboarding.plan_created"} <= written


def test_every_action_the_portal_writes_is_suggested_in_the_trail_filter():
    missing = sorted(_written_actions() - set(KNOWN_ACTIONS))
    assert not missing, f"add to portal/audit/forms.py EXPLICIT_ACTIONS: {missing}"
