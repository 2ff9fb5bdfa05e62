from __future__ import annotations

from datetime import date

import pytest

from portal.onboarding.workdays import (
    add_working_days,
    bank_holidays,
    easter_sunday,
    working_days_between,
)


def test_it_knows_englands_bank_holidays_with_substitute_days():
    assert sorted(bank_holidays(2026)) == [
        date(2026, 1, 1),
        date(2026, 4, 3),
        date(2026, 4, 6),
        date(2026, 5, 4),
        date(2026, 5, 25),
        date(2026, 8, 31),
        date(2026, 12, 25),
        date(2026, 12, 28),
    ]
    # Christmas 2027 is a Saturday and Boxing Day a Sunday: Monday and Tuesday instead.
    assert {date(2027, 12, 27), date(2027, 12, 28)} <= bank_holidays(2027)
    assert date(2028, 1, 3) in bank_holidays(2028)  # New Year's Day 2028 is a Saturday.


@pytest.mark.parametrize(
    ("year", "easter"),
    [
        (2024, date(2024, 3, 31)),
        (2025, date(2025, 4, 20)),
        (2026, date(2026, 4, 5)),
        (2027, date(2027, 3, 28)),
    ],
)
def test_it_finds_easter(year, easter):
    assert easter_sunday(year) == easter


@pytest.mark.parametrize(
    ("start", "days", "due"),
    [
        (date(2026, 11, 23), 5, date(2026, 11, 30)),  # Monday + 5 skips one weekend
        (date(2026, 11, 27), 1, date(2026, 11, 30)),  # Friday + 1 is Monday
        (date(2026, 12, 23), 5, date(2027, 1, 4)),  # Christmas, substitute Boxing Day, New Year
        (date(2026, 4, 2), 1, date(2026, 4, 7)),  # over Easter
        (date(2026, 11, 28), 0, date(2026, 11, 28)),
    ],
)
def test_it_adds_working_days(start, days, due):
    assert add_working_days(start, days) == due


def test_it_counts_working_days_waited():
    assert working_days_between(date(2026, 11, 20), date(2026, 11, 27)) == 5
    assert working_days_between(date(2026, 12, 24), date(2026, 12, 29)) == 1
    assert working_days_between(date(2026, 11, 27), date(2026, 11, 27)) == 0
    assert working_days_between(date(2026, 11, 27), date(2026, 11, 20)) == 0
