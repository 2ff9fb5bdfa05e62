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

That walk is quick when the matches are spread through time, and hopeless when they are not: two
words each in millions of messages but together only in an old batch ("screening 20261001") make
it check every newer message (75 s for one page at ten million messages). So the message list gives
a word walk WALK_SECONDS, and if it has not finished, collects the matches from the word index
instead (`matching_ids`): the entries of the rarest word, each checked for the others (16,682
matches from 111,111 entries in 0.8 s there), then pages those by id.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Exists, Max, OuterRef, Q
from django.db.models.functions import Substr
from django.db.models.lookups import Exact

from portal.lib.idlist import id_list
from portal.lib.querytime import postgres_settings

from .models import Message, MessageWord
from .words import words_of

# Fewer matches than this are looked up by id; more are filtered during the page's walk.
CANDIDATES = 1000
TOP = "\U0010ffff"
# How long the list lets a word search walk before it collects the matches from the word index.
WALK_SECONDS = 0.5
# Collected matches are read from the entries of the rarest word if it has at most this many (each
# entry is one index probe a word: ~6 µs on PostgreSQL), and kept if there are at most MATCH_LIMIT.
RAREST_LIMIT = 500_000
MATCH_LIMIT = 200_000


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


def _has_word(word: str, of: str = "pk") -> Exists:
    return Exists(MessageWord.objects.filter(prefix("word", word), message=OuterRef(of)))


def matching_ids(words: set[str]) -> list[int] | None:
    """The ids of the messages having every word (as `words_narrowing` reads them), collected from the
    word index: the entries of the rarest word, each checked for the others.

    None when that cannot be quick or the ids would be too many to page by id: every word in more
    than RAREST_LIMIT entries, or more than MATCH_LIMIT matches (a walk then finds a page sooner).
    """
    if not words:
        return []
    rarest, fewest = None, RAREST_LIMIT + 1
    for word in sorted(words, key=len, reverse=True):
        # Counted up to the fewest so far: a common word costs no more than the rarest one.
        entries = MessageWord.objects.filter(prefix("word", word))[:fewest].count()
        if entries < fewest:
            rarest, fewest = word, entries
    if rarest is None:
        return None
    rows = MessageWord.objects.filter(prefix("word", rarest))
    for word in words - {rarest}:
        rows = rows.filter(_has_word(word, of="message_id"))
    # Each entry of the rarest word is checked by an index probe for the others, as SQLite does.
    # PostgreSQL would rather hash every entry of the common words (millions): 2.4 s against 0.5 s
    # for "screening results 20260915" at ten million messages, so not for this one query.
    with postgres_settings(rows.db, enable_hashjoin="off", enable_mergejoin="off"):
        found = list(rows.values_list("message_id", flat=True)[: MATCH_LIMIT + 1])
    # One message can hold several words starting with the rarest one: an entry each.
    return None if len(found) > MATCH_LIMIT else sorted(set(found))


@dataclass(frozen=True)
class Narrowing:
    """What a search does to the list: `filter()` arguments, and whether they are checked row by
    row while the page walks (`walks`: many matches), by `words` if it is a word search. Worked
    out once a request (its index checks are queries), applied to the page and to its count."""

    conditions: tuple = ()
    walks: bool = False
    words: frozenset[str] | None = None

    def apply(self, queryset):
        return queryset.filter(*self.conditions)


NOTHING = Narrowing((Q(pk__in=[]),))


def among(ids: list[int], using: str = "default") -> Narrowing:
    """The collected matches `ids` (up to MATCH_LIMIT), looked up by id."""
    return Narrowing((Q(pk__in=id_list(ids, using)),))


def narrowing(query: str) -> Narrowing:
    """How the list is narrowed to the messages `query` finds (see the module's docstring)."""
    query = query.strip()
    if not query:
        return Narrowing()
    if " " not in query:
        fields = [("mesh_message_id", query.upper()), ("local_id", query)]
        if len(words_of(query)) > 1:
            fields.append(("filename", query))
        for field, value in fields:
            ids = _candidates(prefix(field, value))
            if ids is None:  # a short prefix of many ids: checked while the page is walked
                return Narrowing((Exact(Substr(field, 1, len(value)), value),), walks=True)
            if ids:
                return Narrowing((Q(pk__in=ids),))
    return words_narrowing(words_of(query))


def words_narrowing(words: set[str]) -> Narrowing:
    """Messages whose subject or filename has, for every word, a word starting with it."""
    if not words:
        return NOTHING
    narrowest = None
    for word in sorted(words, key=len, reverse=True):
        ids = _candidates(prefix("word", word), MessageWord)
        if ids is not None and (narrowest is None or len(ids) < len(narrowest)):
            narrowest = ids
        if narrowest == []:
            return NOTHING
    has_every_word = tuple(_has_word(word) for word in sorted(words))
    if narrowest is not None:
        return Narrowing((Q(pk__in=set(narrowest)), *has_every_word))
    return Narrowing(has_every_word, walks=True, words=frozenset(words))
