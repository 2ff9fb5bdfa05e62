"""Working days in England: NHS England's turnaround times are published in working days.

Bank holidays follow the rules for England and Wales (GOV.UK), with a substitute weekday when a fixed
holiday falls at a weekend. One-off changes (a coronation, a moved May holiday) go in
``ONE_OFF_HOLIDAYS`` and ``MOVED_HOLIDAYS`` when GOV.UK announces them.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache

# Extra holidays announced for a single year.
ONE_OFF_HOLIDAYS: set[date] = set()
# A rule-based holiday moved for one year: {the rule's date: the date it moved to}.
MOVED_HOLIDAYS: dict[date, date] = {}


def easter_sunday(year: int) -> date:
    """The Gregorian Easter Sunday (the anonymous Meeus/Jones/Butcher algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    weekday = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 19 * weekday) // 433
    month = (h + weekday - 7 * m + 90) // 25
    return date(year, month, (h + weekday - 7 * m + 33 * month + 19) % 32)


def _first_monday(year: int, month: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(7 - first.weekday()) % 7)


def _last_monday(year: int, month: int) -> date:
    following = date(year + month // 12, month % 12 + 1, 1)
    last = following - timedelta(days=1)
    return last - timedelta(days=last.weekday())


def _fixed_with_substitutes(days: list[date]) -> list[date]:
    """Fixed holidays that fall at a weekend move to the next free weekday."""
    taken: list[date] = []
    for day in days:
        while day.weekday() >= 5 or day in taken:
            day += timedelta(days=1)
        taken.append(day)
    return taken


@lru_cache(maxsize=64)
def bank_holidays(year: int) -> frozenset[date]:
    easter = easter_sunday(year)
    rules = [
        easter - timedelta(days=2),  # Good Friday
        easter + timedelta(days=1),  # Easter Monday
        _first_monday(year, 5),  # Early May bank holiday
        _last_monday(year, 5),  # Spring bank holiday
        _last_monday(year, 8),  # Summer bank holiday
    ]
    days = {MOVED_HOLIDAYS.get(day, day) for day in rules}
    days.update(_fixed_with_substitutes([date(year, 1, 1)]))
    days.update(_fixed_with_substitutes([date(year, 12, 25), date(year, 12, 26)]))
    days.update(day for day in ONE_OFF_HOLIDAYS if day.year == year)
    return frozenset(days)


def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and day not in bank_holidays(day.year)


def add_working_days(start: date, days: int) -> date:
    """The date `days` working days after `start` (start itself is not counted)."""
    current = start
    for _ in range(days):
        current += timedelta(days=1)
        while not is_working_day(current):
            current += timedelta(days=1)
    return current


def working_days_between(start: date, end: date) -> int:
    """Working days after `start` up to and including `end`; 0 when `end` is not after `start`."""
    count, current = 0, start
    while current < end:
        current += timedelta(days=1)
        if is_working_day(current):
            count += 1
    return count
