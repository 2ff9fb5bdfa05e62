"""Onboarding pages, one module per area: plans, tasks (with evidence and decisions),
correspondence, and the IP allow-list register with the readiness gate."""
