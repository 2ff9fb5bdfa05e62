"""django-q2's task results: kept for the pages that show how a task ended, pruned by a schedule.

The portal reads a task's result by its id (a handshake or a poll someone asked for, `fetch` in
portal.front.views), so successes are saved. django-q2 can prune them itself (`save_limit` > 0),
but does it inside every task's save: it locks and loads every kept success (up to the limit, 1,000
here) to count them, which cost a worker 3-4 ms of CPU a task on PostgreSQL (a send task a
message in a burst: 18 ms a message became 14.6 in `make bench` throughput) and made the clusters'
monitors queue behind one another's row locks. So `save_limit` is 0 (django-q2 never prunes) and
`prune` runs every few minutes, keeping the newest `TASK_RESULTS_KEPT` successes. Failures are
kept, as django-q2 keeps them: they are what an admin looks for.
"""

from __future__ import annotations

from django.conf import settings

BATCH = 1000


def prune(keep: int | None = None) -> int:
    """Delete all but the newest `keep` (TASK_RESULTS_KEPT) successful task results; the count."""
    from django_q.models import Success

    keep = settings.TASK_RESULTS_KEPT if keep is None else keep
    newest_first = Success.objects.order_by("-stopped", "-id").values_list("id", flat=True)
    deleted = 0
    while ids := list(newest_first[keep : keep + BATCH]):
        deleted += Success.objects.filter(id__in=ids).delete()[0]
    return deleted
