"""The message list's search box: MESH ids and local ids by prefix, subjects and filenames by words.

Every search reads an index, on SQLite and PostgreSQL alike, so it stays quick at millions of rows:

- a MESH message id, any case: MESH ids are upper-case, so the query is upper-cased (never the
  column lower-cased) and read as a prefix range on `msg_mesh_id`;
- a local id: a prefix range on `msg_local_id`, as typed (local ids are the sender's own);
- a filename's start, as typed, when the query is one token of several words
  ("path_results-20261203"): a prefix range on `msg_filename`. Pasted from a file listing, it names
  few messages, while each of its words (a date, "results") can name millions: read as words it
  made the database check every message holding the rarest of them (seconds at 10M messages);
- otherwise words: every word typed must start a word of the subject or filename, any case. The
  words are kept lower-cased in `MessageWord` (one row a word, indexed by word) when a message is
  stored, so a word is a prefix range on that index, not a scan of every subject.

A prefix range (`>= p AND < p + U+10FFFF`) rather than LIKE: SQLite's LIKE is case-insensitive and
cannot use an ordinary index, PostgreSQL's only with a C collation or a pattern index. The ranges
are exact under SQLite's binary collation and PostgreSQL's C or C.UTF-8 collation.

Few matches (at most CANDIDATES) are fetched by id from the index, then paged; many are left to the
page's walk of the created_at index, which stops as soon as a page is full.
"""

from __future__ import annotations

from django.db.models import Exists, Max, OuterRef, Q
from django.db.models.functions import Substr

from .models import Message, MessageWord
from .words import words_of

# Fewer matches than this are looked up by id; more are filtered during the page's walk.
CANDIDATES = 1000
TOP = "\U0010ffff"


def prefix(field: str, value: str) -> Q:
    """`field` starts with `value`, as a range an ordinary index can serve."""
    return Q(**{f"{field}__gte": value, f"{field}__lt": value + TOP})


def rebuild_words(*, message_model=None, word_model=None, batch: int = 5000) -> int:
    """Index the words of every message stored after the last one indexed: all of them in the
    data migration that made the index, the rows a bulk load added (no save()) afterwards.

    Returns the number of messages indexed.
    """
    if message_model is None or word_model is None:
        message_model, word_model = Message, MessageWord
    last = word_model.objects.aggregate(last=Max("message_id"))["last"] or 0
    done = 0
    while True:
        rows = list(
            message_model.objects.filter(pk__gt=last)
            .order_by("pk")
            .values_list("pk", "subject", "filename")[:batch]
        )
        if not rows:
            return done
        last = rows[-1][0]
        word_model.objects.bulk_create(
            (
                word_model(message_id=pk, word=word)
                for pk, subject, filename in rows
                for word in words_of(subject, filename)
            ),
            batch_size=5000,
        )
        done += len(rows)


def _candidates(condition: Q, model=None) -> list[int] | None:
    """The ids matching `condition` (an indexed range) if there are at most CANDIDATES, else None."""
    rows = (model or Message).objects.filter(condition)
    field = "message_id" if model is not None else "pk"
    ids = list(rows.values_list(field, flat=True)[: CANDIDATES + 1])
    return None if len(ids) > CANDIDATES else ids


def _has_word(word: str) -> Exists:
    return Exists(MessageWord.objects.filter(prefix("word", word), message=OuterRef("pk")))


def walked(queryset) -> bool:
    """Whether `queryset` holds a search checked row by row while the page walks (many matches)."""
    return getattr(queryset, "_search_walks", False)


def _walking(queryset):
    queryset._search_walks = True
    return queryset


def search(queryset, query: str):
    """`queryset` narrowed to the messages `query` finds (see the module's docstring)."""
    query = query.strip()
    if not query:
        return queryset
    if " " not in query:
        fields = [("mesh_message_id", query.upper()), ("local_id", query)]
        if len(words_of(query)) > 1:
            fields.append(("filename", query))
        for field, value in fields:
            ids = _candidates(prefix(field, value))
            if ids is None:  # a short prefix of many ids: checked while the page is walked
                head = Substr(field, 1, len(value))
                return _walking(queryset.alias(head=head).filter(head=value))
            if ids:
                return queryset.filter(pk__in=ids)
    return search_words(queryset, words_of(query))


def search_words(queryset, words: set[str]):
    """Messages whose subject or filename has, for every word, a word starting with it."""
    if not words:
        return queryset.none()
    narrowest = None
    for word in sorted(words, key=len, reverse=True):
        ids = _candidates(prefix("word", word), MessageWord)
        if ids is not None and (narrowest is None or len(ids) < len(narrowest)):
            narrowest = ids
        if narrowest == []:
            return queryset.none()
    if narrowest is not None:
        queryset = queryset.filter(pk__in=set(narrowest))
    for word in words:
        queryset = queryset.filter(_has_word(word))
    return queryset if narrowest is not None else _walking(queryset)
