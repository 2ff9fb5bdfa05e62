"""Patient-identifiable data where MESH forbids it: the local id and the subject (mesh-protocol.md 5.1).

Both travel in the clear to the recipient, into tracking and into non-delivery reports, so MESH's
rule is that they "must not contain patient identifiable data". Two things are recognised:

- an **NHS number**: ten digits, alone or grouped 3-3-4 with spaces or hyphens, whose modulus 11
  check digit is right (a random ten-digit reference passes the check only one time in eleven);
- a **date of birth**: a calendar date written day first (03/12/1980, 3-12-1980, 3.12.1980,
  3 Dec 1980), the way patient records write them, or any date next to a label such as "DOB",
  "born" or "date of birth". Dates written year first (2026-12-03, 20261203) are left alone
  unless labelled: that is how batch and report dates are written.

The findings are described without repeating the value in full: the error is shown on a page and
may be logged.
"""

from __future__ import annotations

import re
from datetime import date

from meshcore import nhs_number_valid

RULE = "must not contain patient identifiable data"

_NHS_NUMBER_RE = re.compile(r"(?<![\d])(\d{3})[ -]?(\d{3})[ -]?(\d{4})(?![\d])")
_MONTHS = "jan feb mar apr may jun jul aug sep oct nov dec".split()
_MONTH_NAME = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*"
_DAY_FIRST_RE = re.compile(
    rf"(?<!\d)(\d{{1,2}})(?:[/.-](\d{{1,2}})[/.-]|\s+({_MONTH_NAME})\.?\s+)(\d{{4}}|\d{{2}})(?!\d)",
    re.IGNORECASE,
)
_YEAR_FIRST_RE = re.compile(r"(?<!\d)(\d{4})[/.-]?(\d{2})[/.-]?(\d{2})(?!\d)")
_DOB_LABEL_RE = re.compile(r"\b(?:d\.?o\.?b\.?|born|date\s+of\s+birth|birth\s*date)\b", re.I)


def _real_date(year: int, month: int, day: int) -> bool:
    if year < 100:
        year += 1900 if year > date.today().year % 100 else 2000
    try:
        return 1880 <= date(year, month, day).year <= date.today().year
    except ValueError:
        return False


def _day_first_dates(text: str) -> list[str]:
    found = []
    for match in _DAY_FIRST_RE.finditer(text):
        day, month_number, month_name, year = match.groups()
        month = int(month_number) if month_number else _MONTHS.index(month_name[:3].lower()) + 1
        if _real_date(int(year), month, int(day)):
            found.append(match.group(0))
    return found


def _labelled_dates(text: str) -> list[str]:
    if not _DOB_LABEL_RE.search(text):
        return []
    found = [
        m.group(0)
        for m in _YEAR_FIRST_RE.finditer(text)
        if _real_date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    ]
    return found + _day_first_dates(text)


def findings(text: str) -> list[str]:
    """What in `text` looks patient-identifiable, described for a person, masked."""
    found = []
    for match in _NHS_NUMBER_RE.finditer(text or ""):
        if nhs_number_valid("".join(match.groups())):
            found.append(f"an NHS number ({match.group(1)} *** ****)")
    dates = _labelled_dates(text or "") or _day_first_dates(text or "")
    found += ["a date of birth"] * min(1, len(dates))
    return found


def pid_problem(label: str, text: str) -> str:
    """The refusal for one field ('' when clean), in the rule's own words."""
    found = findings(text)
    if not found:
        return ""
    return (
        f"{label} {RULE}: it contains what looks like {', '.join(found)}. MESH passes it in the "
        "clear to the recipient, tracking and reports. Use a reference that does not identify "
        "the patient (write batch or report dates year first, for example 2026-12-03)."
    )
