"""A time limit on a page's queries, enforced by the database (SQLite here, PostgreSQL in phase 2)."""

from __future__ import annotations

import time

import pytest
from django.db import connection

from portal.lib.querytime import TooSlow, time_limit

pytestmark = pytest.mark.django_db

# Counting to fifty million takes seconds on either engine; a quick query takes milliseconds.
SLOW = (
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50000000) "
    "SELECT count(*) FROM n"
)


def scalar(sql: str):
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()[0]


def test_it_stops_a_query_that_runs_past_the_limit_and_leaves_the_connection_usable():
    started = time.monotonic()
    with pytest.raises(TooSlow) as stopped, time_limit(0.2):
        scalar(SLOW)
    assert time.monotonic() - started < 5  # stopped by the database, not run to its end
    assert stopped.value.seconds == 0.2
    assert "0.2 seconds" in str(stopped.value)
    assert scalar("SELECT 1") == 1  # no limit, no broken transaction afterwards
    with time_limit(5):
        assert scalar("SELECT 2") == 2


def test_it_lifts_the_limit_when_the_block_ends():
    with time_limit(0.2):
        assert scalar("SELECT 3") == 3
    if connection.vendor == "postgresql":
        assert scalar("SHOW statement_timeout") == "0"
    else:
        assert (
            scalar(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                "WHERE i < 3000000) SELECT count(*) FROM n"
            )
            == 3000000
        )


def test_no_limit_is_no_limit():
    with time_limit(None), time_limit(0):
        assert scalar("SELECT 4") == 4


def test_a_loop_of_quick_queries_is_stopped_between_them_once_past_the_limit():
    # Each query is within the limit, so the database stops none: check_time does.
    from portal.lib.querytime import check_time

    check_time()  # outside a limit: never
    with pytest.raises(TooSlow) as stopped, time_limit(0.05):
        check_time()  # in time
        time.sleep(0.06)
        check_time()
    assert stopped.value.seconds == 0.05
    with time_limit(5):
        with time_limit(0.01):
            time.sleep(0.02)
        check_time()  # the inner limit ended with its block: the outer one is in time
