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

Few matches (at most CANDIDATES) are fetched by id from the index, then paged; many are left to a
walk in the list's order, which stops as soon as a page is full. A word search that is the list's
only filter walks the word index (WordWalk): the entries of its rarest word in the list's order
(each entry carries its message's created_at), starting where the words first meet, each entry
probed for the other words. With another filter (a mailbox, a status, a person's reach) the
page walks that filter's index of messages instead, each checked for the words: the word's entries
might be mostly other mailboxes' or other days'.

The list's walk is quick when the matches are spread through time, and hopeless when they are not:
two words each in millions of messages but together only in an old batch ("screening 20261001")
make it check every newer message (75 s for one page at ten million messages). The word walk
starts at that batch, and is slow only when few of the rarest word's messages have the others,
all through time. So the message list gives either walk WALK_SECONDS, and if it has not finished,
collects the matches from the word index instead (`matching_ids`), then pages those by id. The
entries of the rarest word are read; each other word's entries between the first and the last of
those are read and kept in common, so two words each in millions of messages cost what their
entries in one batch cost (66,673 matches from 111,112 and 66,673 entries in 67 ms at ten million
messages; checking each of the 111,112 for the other word by an index probe took 115 ms on SQLite
and 0.3 s on PostgreSQL). A word whose entries there are many more (spread through all time) is
checked by a probe of each id kept.

WALK_SECONDS is short (a walk that finds its page at all finds it in a few milliseconds); the
count of a page found walks on for up to WALK_COUNT_SECONDS. A word too common to collect then
walks again for the rest of SEARCH_TIME_LIMIT_SECONDS. A search whose rarest word has at most
COLLECT_AT_ONCE entries is collected without a walk (a few milliseconds).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Exists, Max, OuterRef, Q
from django.db.models.functions import Substr
from django.db.models.lookups import Exact

from portal.lib.idlist import id_list
from portal.lib.querytime import check_time, postgres_settings

from .models import Message, MessageWord
from .words import words_of

# Fewer matches than this are looked up by id; more are filtered during the page's walk.
CANDIDATES = 1000
# A word search whose rarest word has at most this many entries is collected at once (matching_ids,
# ~20 ms at most) instead of walked first.
COLLECT_AT_ONCE = 20_000
TOP = "\U0010ffff"
# How long the list lets a word search walk for its page before it collects the matches from the
# word index, and then, the page found, its count (which walks on, up to 1,001 matches: 41 ms at 1%
# of ten million messages).
WALK_SECONDS = 0.05
WALK_COUNT_SECONDS = 0.45
# Collected matches are read from the entries of the rarest word if it has at most this many, and
# kept if there are at most MATCH_LIMIT.
RAREST_LIMIT = 500_000
MATCH_LIMIT = 200_000
# Another word's entries between the first and last id kept are read if at most RANGE_FACTOR times
# the ids kept (else each id kept is probed for it), and if its prefix stands for at most
# PREFIX_WORDS distinct words (one index range each).
RANGE_FACTOR = 4
PREFIX_WORDS = 32


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
    # The index as first made (migration 0010) had no created_at; 0012 fills it in.
    dated = any(f.name == "created_at" for f in word_model._meta.get_fields())
    done = 0
    while True:
        rows = list(
            message_model.objects.filter(pk__gt=last)
            .order_by("pk")
            .values_list("pk", "subject", "filename", "created_at")[:batch]
        )
        if not rows:
            return done
        last = rows[-1][0]
        word_model.objects.bulk_create(
            (
                word_model(message_id=pk, word=word, **({"created_at": at} if dated else {}))
                for pk, subject, filename, at in rows
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


def _prefixed_words(start: str) -> list[str] | None:
    """The distinct indexed words starting with `start`, if at most PREFIX_WORDS: one index seek
    each (the next word after the last), not a read of every entry."""
    found: list[str] = []
    rows = MessageWord.objects.filter(word__lt=start + TOP).order_by("word")
    after = rows.filter(word__gte=start)
    while (word := after.values_list("word", flat=True).first()) is not None:
        if len(found) == PREFIX_WORDS:
            return None
        found.append(word)
        after = rows.filter(word__gt=word)
    return found


def _read_between(word: str, low: int, high: int, most: int) -> set[int] | None:
    """The ids from `low` to `high` having a word starting with `word`, read from the index if
    they are at most `most` entries of at most PREFIX_WORDS words; else None."""
    words = _prefixed_words(word)
    if words is None:
        return None
    if not words:
        return set()
    rows = MessageWord.objects.filter(word__in=words, message_id__gte=low, message_id__lte=high)
    ids = list(rows.values_list("message_id", flat=True)[: most + 1])
    return None if len(ids) > most else set(ids)


def _probed(word: str, ids: set[int]) -> set[int]:
    """Those of `ids` having a word starting with `word`: each id's words checked by the index on
    message (a few entries an id)."""
    rows = MessageWord.objects.filter(prefix("word", word), message_id__in=id_list(ids))
    # PostgreSQL would rather hash every entry of a common word (millions) than probe each id.
    with postgres_settings(rows.db, enable_hashjoin="off", enable_mergejoin="off"):
        return set(rows.values_list("message_id", flat=True))


def _entry_counts(words: set[str], most: int) -> dict[str, int]:
    """Each word's entries in the index, longest word first (likely the rarest), each counted up
    to the fewest so far, at most `most` + 1: a common word costs no more than the rarest one. The
    first of the fewest is the rarest (a tie at the cap: the longest)."""
    entries, fewest = {}, most + 1
    for word in sorted(words, key=lambda word: (-len(word), word)):
        entries[word] = MessageWord.objects.filter(prefix("word", word))[:fewest].count()
        fewest = min(fewest, entries[word])
    return entries


def matching_ids(
    words: set[str], most: int | None = None, entries: dict[str, int] | None = None
) -> list[int] | None:
    """The ids of the messages having every word (as `words_narrowing` reads them), collected from the
    word index: the entries of the rarest word are read; each other word's entries between the
    first and the last of those are read and kept in common, or, when they are many more (a word
    spread through all time), the ids kept so far are each checked for it.

    None when that cannot be quick or the ids would be too many to page by id: every word in more
    than `most` entries (RAREST_LIMIT), or more than MATCH_LIMIT matches (a walk then finds a page
    sooner). `entries`: the words' counts, if already taken (_entry_counts).
    """
    if not words:
        return []
    most = RAREST_LIMIT if most is None else most
    entries = _entry_counts(words, most) if entries is None else entries
    rarest = min(entries, key=entries.get)
    if entries[rarest] > most:
        return None
    found = set(
        MessageWord.objects.filter(prefix("word", rarest)).values_list("message_id", flat=True)
    )
    for word in sorted(words - {rarest}, key=entries.get):
        if not found:
            return []
        between = _read_between(word, min(found), max(found), RANGE_FACTOR * len(found))
        found &= between if between is not None else _probed(word, found)
    return None if len(found) > MATCH_LIMIT else sorted(found)


def _past(cursor: tuple[datetime, int], newest_first: bool, *, at_it: bool = False) -> Q:
    """Word entries beyond `cursor` (created_at, message id) in the walk's order, or at it."""
    at, pk = cursor
    if newest_first:
        last = Q(message_id__lte=pk) if at_it else Q(message_id__lt=pk)
        # `created_at <= at` alone gives the planner a plain index range; the OR breaks the tie.
        return (Q(created_at__lt=at) | Q(last, created_at=at)) & Q(created_at__lte=at)
    last = Q(message_id__gte=pk) if at_it else Q(message_id__gt=pk)
    return (Q(created_at__gt=at) | Q(last, created_at=at)) & Q(created_at__gte=at)


def _entries(
    words, cursor, newest_first: bool, most: int, *, at_it: bool = False, having=()
) -> list[tuple[datetime, int]]:
    """Up to `most` (created_at, message id) entries of `words` (exact indexed words) past
    `cursor` (or at it), in the walk's order, with `having` too: one ordered index range a word,
    merged. Read `most` a word, a message with two of them is one entry, so the first `most` of
    the merge are exact."""
    order = ("-created_at", "-message_id") if newest_first else ("created_at", "message_id")
    found: set[tuple] = set()
    for word in words:
        check_time()  # each query is within the time limit; together they may not be
        rows = MessageWord.objects.filter(*having, word=word)
        if cursor is not None:
            rows = rows.filter(_past(cursor, newest_first, at_it=at_it))
        found.update(rows.order_by(*order).values_list("created_at", "message_id")[:most])
    return sorted(found, reverse=newest_first)[:most]


@dataclass(frozen=True)
class WordWalk:
    """The message list walked along the word index instead of along every message, for a word
    search that is the list's only filter: the entries of its rarest word in the list's order
    (index msgword_word_created), each probed for the other words (index msgword_word_message),
    until a page (or a count) is found. It reads the word index only.

    The walk starts where the words can first meet: past the cursor, at the furthest of each
    word's first entry (newest first: the oldest of their newest), as a match has every word. So
    words each in millions of messages but together only in an old batch ("batch 20261001") cost
    a few index seeks, where the list's own walk checked every newer message. It is slow only when
    few of the rarest word's entries have the others, all through time; the list then collects
    the matches instead (matching_ids).

    `words`: the indexed words the walked one starts; `others`: the other words typed; `each`: the
    indexed words of every word typed, None for one that starts more than PREFIX_WORDS words;
    `within`: the mailboxes whose messages count (a person's reach), None for every one.
    """

    words: tuple[str, ...]
    others: tuple[str, ...]
    each: tuple[tuple[str, ...] | None, ...]
    within: tuple[int, ...] | None = None

    def __call__(self, cursor: tuple | None, newest_first: bool, most: int) -> list[int]:
        """Up to `most` ids of the messages with every word past `cursor` (None: from the start),
        in the list's order (newest first) or its reverse (portal.lib.pagination.IdWalk)."""
        if self.within == ():
            return []
        firsts = []
        for words in filter(None, self.each):
            if not (first := _entries(words, cursor, newest_first, 1)):
                return []  # a word with no entry past the cursor: no match past it
            firsts.append(first[0])
        start = min(firsts) if newest_first else max(firsts)
        having = [
            Exists(MessageWord.objects.filter(prefix("word", word), message=OuterRef("message")))
            for word in self.others
        ]
        if self.within is not None:  # each entry's message looked up by id for its mailbox
            mine = Message.objects.filter(pk=OuterRef("message"), mailbox_id__in=self.within)
            having.append(Exists(mine))
        # Each entry is probed: PostgreSQL would rather hash every entry of a common other word.
        with postgres_settings(enable_hashjoin="off", enable_mergejoin="off"):
            found = _entries(self.words, start, newest_first, most, at_it=True, having=having)
        return [pk for _, pk in found]


def word_walk(
    words: frozenset[str], rarest: str, within: list[int] | None = None
) -> WordWalk | None:
    """The walk of `words` along the entries of `rarest`, in the messages of the mailboxes
    `within` (None: all), unless it starts too many words."""
    each = {word: _prefixed_words(word) for word in sorted(words)}
    if not (walked := each[rarest]):
        return None
    others = tuple(sorted(words - {rarest}))
    mailboxes = None if within is None else tuple(within)
    return WordWalk(tuple(walked), others, tuple(map(_tuple_or_none, each.values())), mailboxes)


def _tuple_or_none(words: list[str] | None) -> tuple[str, ...] | None:
    return None if words is None else tuple(words)


@dataclass(frozen=True)
class Narrowing:
    """What a search does to the list: `filter()` arguments, and whether they are checked row by
    row while the page walks (`walks`: many matches), by `words` if it is a word search. Worked
    out once a request (its index checks are queries), applied to the page and to its count."""

    conditions: tuple = ()
    walks: bool = False
    words: frozenset[str] | None = None
    # The rarest of the walked `words` (the one a WordWalk follows).
    rarest: str | None = None
    # The matches collected from the word index (`among`), their ids ascending.
    collected: list[int] | None = field(default=None, compare=False)

    def apply(self, queryset):
        return queryset.filter(*self.conditions)


NOTHING = Narrowing((Q(pk__in=[]),))


def among(ids: list[int], using: str = "default") -> Narrowing:
    """The collected matches `ids` (up to MATCH_LIMIT), looked up by id."""
    return Narrowing((Q(pk__in=id_list(ids, using)),), collected=ids)


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
    entries = _entry_counts(words, COLLECT_AT_ONCE)
    rarest = min(entries, key=entries.get)
    if entries[rarest] <= COLLECT_AT_ONCE:
        if (ids := matching_ids(words, entries=entries)) is not None:
            return among(ids)
    return Narrowing(has_every_word, walks=True, words=frozenset(words), rarest=rarest)
