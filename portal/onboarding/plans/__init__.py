"""Plan templates, kept as data in the code base. See spec.py for their shape.

To change a template, edit its module and raise its `version`; plans already made keep the copy they
were made with (they record the template key and version).
"""

from __future__ import annotations

from .client_change import CLIENT_CHANGE
from .mesh_api import MESH_API_GO_LIVE
from .spec import DecisionSpec, OptionSpec, PlanTemplate, TaskSpec

TEMPLATES: dict[str, PlanTemplate] = {t.key: t for t in (CLIENT_CHANGE, MESH_API_GO_LIVE)}

__all__ = ["TEMPLATES", "DecisionSpec", "OptionSpec", "PlanTemplate", "TaskSpec", "get_template"]


def get_template(key: str) -> PlanTemplate:
    return TEMPLATES[key]
