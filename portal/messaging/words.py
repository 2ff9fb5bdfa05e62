"""The words of a message's subject and filename, as the message search indexes them (search.py)."""

from __future__ import annotations

import re

WORD_MAX = 50
_WORD = re.compile(r"[^\W_]+")


def words_of(*texts: str) -> set[str]:
    """The distinct lower-case words of `texts` (letters and digits; `_`, `-`, `.` split them)."""
    found = set()
    for text in texts:
        found.update(word[:WORD_MAX] for word in _WORD.findall((text or "").casefold()))
    return found
