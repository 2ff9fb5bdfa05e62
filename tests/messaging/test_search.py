"""The message list's search: MESH ids any case and by prefix, local ids by prefix, words."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from portal.messaging import search
from portal.messaging.models import Message, MessageWord
from tests.accounts.access import make_message
from tests.factories import make_mailbox

pytestmark = pytest.mark.django_db


@pytest.fixture
def found(client, auditor_user):
    client.force_login(auditor_user)

    def get(query: str, **filters) -> list[int]:
        response = client.get(reverse("messaging:list"), {"q": query, **filters})
        assert response.status_code == 200
        return sorted(m.pk for m in response.context["page"].items)

    return get


@pytest.fixture
def messages(db):
    mailbox = make_mailbox("X26ABC1")
    one = make_message(
        mailbox,
        payload=None,
        mesh_message_id="20260102030405060708_ABC123",
        local_id="INV-2026-07",
        subject="Pathology results for March",
        filename="path_results-2026-03.csv",
    )
    two = make_message(
        mailbox,
        payload=None,
        mesh_message_id="20260102030405060708_ABD999",
        local_id="inv-2026-08",
        subject="Discharge summaries",
        filename="DISCHARGE_Summary_March.pdf",
    )
    return one, two


def test_it_finds_a_mesh_id_in_any_case_and_by_its_start(found, messages):
    one, two = messages
    assert found("20260102030405060708_abc123") == [one.pk]
    assert found("20260102030405060708_AB") == [one.pk, two.pk]
    assert found("20260102030405060708_abd") == [two.pk]


def test_it_finds_a_local_id_by_its_start_as_typed(found, messages):
    one, two = messages
    assert found("INV-2026") == [one.pk]
    assert found("inv-2026-0") == [two.pk]


def test_it_finds_subjects_and_filenames_by_every_word_in_any_case(found, messages):
    one, two = messages
    assert found("march") == [one.pk, two.pk]
    assert found("MARCH path") == [one.pk]  # "path" from the filename, "march" from the subject
    assert found("summ disch") == [two.pk]  # the start of each word is enough
    assert found("march nothing") == []  # every word must match
    assert found("results-2026") == [one.pk]  # punctuation separates words
    assert found("march", mailbox=messages[0].mailbox.pk) == [one.pk, two.pk]


@pytest.mark.parametrize("candidates", [search.CANDIDATES, 1])
def test_it_finds_a_pasted_filename_start_as_typed_before_its_words(
    found, messages, monkeypatch, candidates
):
    # One token of several words that starts some filenames names those messages only (a prefix
    # range on the filename index, checked while the page walks when it starts many).
    monkeypatch.setattr(search, "CANDIDATES", candidates)
    one, _ = messages
    archive = make_message(
        one.mailbox, payload=None, subject="Path results 2026 archive", filename="archive.zip"
    )
    assert found("path_results-2026") == [one.pk]
    assert found("path_results-2026-03.csv") == [one.pk]
    assert found("path results 2026") == [one.pk, archive.pk]  # words, with spaces
    assert found("PATH_RESULTS-2026") == [one.pk, archive.pk]  # no filename starts so: words


def test_it_walks_the_page_when_a_search_matches_many(found, messages, monkeypatch):
    # Past CANDIDATES matches the search is applied while the page's rows are read: same answers.
    monkeypatch.setattr(search, "CANDIDATES", 1)
    one, two = messages
    assert found("20260102030405060708_ab") == [one.pk, two.pk]
    assert found("20260102030405060708_abd") == [two.pk]
    assert found("inv-2026-0") == [two.pk]
    assert found("march") == [one.pk, two.pk]
    assert found("march results") == [one.pk]


def test_a_walked_search_is_counted_newest_first(client, auditor_user, messages, monkeypatch):
    # Matches checked row by row (an id prefix shared by many) are counted in the list's order,
    # from the newest, and stop at the limit; counts on indexed filters read their index instead.
    monkeypatch.setattr(search, "CANDIDATES", 1)
    client.force_login(auditor_user)
    with CaptureQueriesContext(connection) as walked:
        html = client.get(reverse("messaging:list"), {"q": "20260102030405060708_AB"}).content
    with CaptureQueriesContext(connection) as indexed:
        client.get(reverse("messaging:list"), {"direction": "in"})
    assert b"2 messages match these filters." in html

    def count_sql(queries):
        return next(q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper())

    assert "ORDER BY" in count_sql(walked) and "ORDER BY" not in count_sql(indexed)


def test_it_shows_how_many_messages_match(client, auditor_user, messages):
    client.force_login(auditor_user)
    html = client.get(reverse("messaging:list"), {"q": "march"}).content.decode()
    assert "2 messages match these filters." in html
    html = client.get(reverse("messaging:list"), {"q": "discharge"}).content.decode()
    assert "1 message matches these filters." in html
    assert "2 messages." in client.get(reverse("messaging:list")).content.decode()


def test_it_indexes_a_stored_message_words_once_and_can_rebuild_them(messages):
    one, _ = messages
    words = set(MessageWord.objects.filter(message=one).values_list("word", flat=True))
    assert words == {"pathology", "results", "for", "march", "path", "2026", "03", "csv"}
    # Messages loaded in bulk (no save()) after the last indexed get their words from rebuild_words.
    loaded = Message.objects.bulk_create(
        [Message(mailbox=one.mailbox, direction="in", workflow_id="W", subject="Bulk Loaded")]
    )
    assert search.rebuild_words() == 1
    assert search.rebuild_words() == 0
    # Each entry carries its message's created_at, in the list's order (search.WordWalk).
    assert set(MessageWord.objects.filter(message=one).values_list("created_at", flat=True)) == {
        one.created_at
    }
    assert MessageWord.objects.get(message=loaded[0], word="bulk").created_at == (
        Message.objects.get(pk=loaded[0].pk).created_at
    )
    assert set(MessageWord.objects.filter(message=loaded[0]).values_list("word", flat=True)) == {
        "bulk",
        "loaded",
    }


def test_a_search_too_slow_to_finish_is_stopped_and_the_page_says_so(
    client, auditor_user, messages, monkeypatch, settings
):
    # The database stops it (portal.lib.querytime, tested on both engines); the page explains.
    from portal.lib.querytime import TooSlow
    from portal.messaging import views

    settings.SEARCH_TIME_LIMIT_SECONDS = 0.5
    limits = []

    def spy(seconds):
        limits.append(seconds)
        return real(seconds)

    real = views.time_limit
    monkeypatch.setattr(views, "time_limit", spy)
    client.force_login(auditor_user)
    assert b"2 messages." in client.get(reverse("messaging:list")).content
    found = client.get(reverse("messaging:list"), {"q": "march"})
    assert b"2 messages match these filters." in found.content
    assert limits == [None, 0.5]  # only a search is limited

    def too_slow(*args, **kwargs):
        raise TooSlow(0.5)

    monkeypatch.setattr(views, "count_up_to", too_slow)
    stopped = client.get(reverse("messaging:list"), {"q": "march"})
    html = stopped.content.decode()
    assert stopped.status_code == 200
    assert "This search was stopped after 0.5 seconds." in html
    assert "add a date range or a mailbox" in html
    assert "<table" not in html and "match these filters" not in html


def test_matching_ids_reads_every_word_from_the_rarest_ones_entries(messages, monkeypatch):
    one, two = messages
    both = make_message(one.mailbox, payload=None, subject="Results resubmitted for March")
    assert search.matching_ids({"march", "results"}) == [one.pk, both.pk]
    assert search.matching_ids({"disch", "summ"}) == [two.pk]
    assert search.matching_ids({"march", "nothing"}) == []
    # Two words of one message start with "res": it is found once.
    assert search.matching_ids({"res", "march"}) == [one.pk, both.pk]
    # Every word too common to read its entries, or too many matches to page by id: not collected.
    monkeypatch.setattr(search, "RAREST_LIMIT", 1)
    assert search.matching_ids({"march", "results"}) is None
    monkeypatch.setattr(search, "RAREST_LIMIT", 10)
    monkeypatch.setattr(search, "MATCH_LIMIT", 1)
    assert search.matching_ids({"march", "results"}) is None


@pytest.mark.parametrize(
    "read_factor, prefix_words", [(search.RANGE_FACTOR, search.PREFIX_WORDS), (0, 32), (4, 1)]
)
def test_matching_ids_reads_or_probes_the_other_words_alike(
    messages, monkeypatch, read_factor, prefix_words
):
    # The other words' entries between the rarest word's first and last id are read when few
    # enough (of few enough distinct words); otherwise each id kept is probed. Same matches.
    monkeypatch.setattr(search, "RANGE_FACTOR", read_factor)
    monkeypatch.setattr(search, "PREFIX_WORDS", prefix_words)
    one, two = messages
    both = make_message(one.mailbox, payload=None, subject="Results resubmitted for March")
    assert search.matching_ids({"march", "results"}) == [one.pk, both.pk]
    assert search.matching_ids({"res", "march"}) == [one.pk, both.pk]  # "results", "resubmitted"
    assert search.matching_ids({"disch", "summ", "mar"}) == [two.pk]
    assert search.matching_ids({"march", "nothing"}) == []


def test_matching_ids_reads_only_the_other_words_entries_between_the_rarest_ones(
    messages, monkeypatch
):
    one, _ = messages

    def made(subject: str, times: int = 1) -> list[Message]:
        return [make_message(one.mailbox, payload=None, subject=subject) for _ in range(times)]

    made("Audit", 4)
    rare = made("Audit, quarterly")[0]
    made("Audit", 4)
    probed = []
    real = search._probed
    monkeypatch.setattr(search, "_probed", lambda *args: probed.append(args) or real(*args))
    monkeypatch.setattr(search, "RANGE_FACTOR", 1)
    # "audit" is in nine messages, one of them between the first and last "quarterly": read.
    assert search.matching_ids({"audit", "quarterly"}) == [rare.pk]
    assert probed == []
    # "annual" in the first and the last of five "review"s: all five lie between, more than the
    # two ids kept, so each of those is probed.
    first, *_, last = made("Review, annual") + made("Review", 3) + made("Review, annual")
    assert search.matching_ids({"review", "annual"}) == [first.pk, last.pk]
    assert [word for word, _ in probed] == ["review"]


@pytest.fixture
def walk_stopped(monkeypatch, settings):
    """The list's walk of a word search runs out of its time (as words common to millions of
    messages but together only long ago do): each request's first reading of the page, given
    search.WALK_SECONDS, is stopped."""
    from portal.lib.querytime import TooSlow
    from portal.messaging import views

    monkeypatch.setattr(search, "CANDIDATES", 1)  # every word is common: the search walks
    monkeypatch.setattr(search, "COLLECT_AT_ONCE", 0)  # ... and too common to collect at once
    settings.SEARCH_TIME_LIMIT_SECONDS = 5
    real, limits = views._listed_page, []

    def walked(request, filters, rows, seconds, count_seconds):
        limits.append(seconds)
        raise TooSlow(seconds)

    def listed(request, filters, rows, seconds):
        limits.append(seconds)
        return real(request, filters, rows, seconds)

    monkeypatch.setattr(views, "_walked_page", walked)
    monkeypatch.setattr(views, "_listed_page", listed)
    return limits


def test_a_word_search_whose_walk_runs_out_of_time_is_paged_from_its_collected_matches(
    client, auditor_user, messages, walk_stopped
):
    one, two = messages
    resent = make_message(one.mailbox, payload=None, subject="March results, resent")
    client.force_login(auditor_user)
    response = client.get(reverse("messaging:list"), {"q": "march results"})
    html = response.content.decode()
    assert response.context["filters"].matched_ids == sorted([one.pk, resent.pk])
    assert [m.pk for m in response.context["page"].items] == [resent.pk, one.pk]  # newest first
    assert "2 messages match these filters." in html and "stopped" not in html
    assert walk_stopped[0] == search.WALK_SECONDS and 0 < walk_stopped[1] < 5
    # Over an environment's mailboxes (one walk a mailbox, merged) the collected ids apply too.
    response = client.get(
        reverse("messaging:list"), {"q": "march results", "environment": "sandbox"}
    )
    assert response.context["filters"].matched_ids == sorted([one.pk, resent.pk])
    assert [m.pk for m in response.context["page"].items] == [resent.pk, one.pk]
    response = client.get(reverse("messaging:list"), {"q": "march results", "direction": "out"})
    assert response.context["page"].items == []


@pytest.fixture
def common_words(monkeypatch, settings):
    """Every word too common to look up by id or to collect at once: a word search walks first."""
    monkeypatch.setattr(search, "CANDIDATES", 1)
    monkeypatch.setattr(search, "COLLECT_AT_ONCE", 0)
    settings.SEARCH_TIME_LIMIT_SECONDS = 5


def test_a_walk_that_finds_its_page_counts_on_for_longer(
    client, auditor_user, messages, common_words, monkeypatch
):
    from portal.messaging import views

    limits, real = [], views.time_limit
    monkeypatch.setattr(
        views, "time_limit", lambda seconds: limits.append(seconds) or real(seconds)
    )
    one, _ = messages
    resent = make_message(one.mailbox, payload=None, subject="March results, resent")
    client.force_login(auditor_user)
    response = client.get(reverse("messaging:list"), {"q": "march results"})
    assert [m.pk for m in response.context["page"].items] == [resent.pk, one.pk]
    assert response.context["filters"].matched_ids is None  # walked, not collected
    assert limits == [search.WALK_SECONDS, search.WALK_COUNT_SECONDS]


@pytest.mark.parametrize("along", ["word index", "list"])
def test_a_walk_whose_count_runs_out_of_time_shows_its_page_and_what_it_shows(
    client, auditor_user, messages, common_words, monkeypatch, along
):
    from portal.lib.querytime import TooSlow
    from portal.messaging import views

    def too_slow(*args, **kwargs):  # the count's walk, newest first: stopped
        raise TooSlow(search.WALK_COUNT_SECONDS)

    monkeypatch.setattr(views, "count_up_to", too_slow)
    monkeypatch.setattr(views, "id_walk_count", too_slow)
    one, _ = messages
    # The search alone walks along its rarest word's entries; with a filter, along the list.
    also = {} if along == "word index" else {"mailbox": one.mailbox.pk}
    made = [
        make_message(one.mailbox, payload=None, subject="March results, resent") for _ in range(25)
    ]
    client.force_login(auditor_user)
    response = client.get(reverse("messaging:list"), {"q": "march results", **also})
    assert (response.context["filters"].word_walk is not None) == (along == "word index")
    assert response.context["filters"].matched_ids is None  # not collected: the page was found
    assert [m.pk for m in response.context["page"].items] == [m.pk for m in reversed(made)]
    assert "More than 25 messages match these filters." in response.content.decode()
    # The page after it: still more than a page of them.
    second = client.get(
        reverse("messaging:list"),
        {"q": "march results", "after": response.context["page"].next_cursor, **also},
    )
    assert [m.pk for m in second.context["page"].items] == [one.pk]
    assert "More than 25 messages match these filters." in second.content.decode()
    # All of them on one first page: that many.
    response = client.get(reverse("messaging:list"), {"q": "march results resent", **also})
    assert len(response.context["page"].items) == 25 and not response.context["page"].next_cursor
    html = response.content.decode()
    assert "25 messages match these filters." in html and "More than" not in html


def test_a_word_search_whose_rarest_word_is_in_few_messages_is_collected_without_a_walk(
    client, auditor_user, messages, walk_stopped, monkeypatch
):
    monkeypatch.setattr(search, "COLLECT_AT_ONCE", 2)  # "results" has 2 entries, "march" 3
    one, _ = messages
    resent = make_message(one.mailbox, payload=None, subject="March results, resent")
    client.force_login(auditor_user)
    response = client.get(reverse("messaging:list"), {"q": "march results"})
    assert response.context["filters"].matched_ids == sorted([one.pk, resent.pk])
    assert [m.pk for m in response.context["page"].items] == [resent.pk, one.pk]
    assert walk_stopped == [5]  # one reading of the page, given the whole limit
    # Both words in more entries than that: the page is walked first.
    monkeypatch.setattr(search, "COLLECT_AT_ONCE", 1)
    response = client.get(reverse("messaging:list"), {"q": "march results"})
    assert response.context["filters"].matched_ids == sorted([one.pk, resent.pk])
    assert walk_stopped[1:] == [search.WALK_SECONDS, pytest.approx(5, abs=1)]


def test_collected_matches_page_forward_and_back_in_the_lists_order(
    client, auditor_user, messages, walk_stopped
):
    # Their ids read first, sorted by created_at (not by id), then their rows looked up.
    one, _ = messages
    start = timezone.now() - timedelta(hours=1)
    made = [
        make_message(
            one.mailbox,
            payload=None,
            subject="March results",
            created_at=start + timedelta(seconds=(n * 7) % 30),
        )
        for n in range(30)
    ]
    newest_first = [m.pk for m in sorted(made, key=lambda m: m.created_at, reverse=True)]
    client.force_login(auditor_user)
    query = {"q": "march results"}
    first = client.get(reverse("messaging:list"), query).context["page"]
    second = client.get(reverse("messaging:list"), {**query, "after": first.next_cursor})
    second = second.context["page"]
    assert [m.pk for m in first.items + second.items] == [one.pk, *newest_first]  # one: now
    assert second.next_cursor is None
    back = client.get(reverse("messaging:list"), {**query, "before": second.prev_cursor})
    assert [m.pk for m in back.context["page"].items] == [one.pk, *newest_first[:24]]


def test_a_word_search_too_common_to_collect_walks_for_the_time_left(
    client, auditor_user, messages, walk_stopped, monkeypatch
):
    monkeypatch.setattr(search, "MATCH_LIMIT", 0)
    one, _ = messages
    client.force_login(auditor_user)
    response = client.get(reverse("messaging:list"), {"q": "march path"})
    assert response.context["filters"].matched_ids is None
    assert [m.pk for m in response.context["page"].items] == [one.pk]
    assert len(walk_stopped) == 2 and walk_stopped[1] < 5


def test_a_word_search_whose_walk_had_the_whole_limit_is_stopped(
    client, auditor_user, messages, walk_stopped, settings
):
    settings.SEARCH_TIME_LIMIT_SECONDS = search.WALK_SECONDS
    client.force_login(auditor_user)
    html = client.get(reverse("messaging:list"), {"q": "march path"}).content.decode()
    assert f"This search was stopped after {search.WALK_SECONDS:g} seconds." in html
    assert walk_stopped == [search.WALK_SECONDS]


def test_an_export_of_a_common_word_search_reads_its_collected_matches(
    client, auditor_user, messages, monkeypatch
):
    from tests.csv_exports import read_csv

    monkeypatch.setattr(search, "CANDIDATES", 1)  # every word is common: the page would walk
    one, two = messages
    resent = make_message(one.mailbox, payload=None, subject="March results, resent")
    client.force_login(auditor_user)
    with CaptureQueriesContext(connection) as queries:
        rows = read_csv(client.get(reverse("messaging:export"), {"q": "march results"}))
    assert [row["NeoMesh id"] for row in rows] == [str(resent.pk), str(one.pk)]
    batches = [
        q["sql"]
        for q in queries.captured_queries
        if 'FROM "messaging_message"' in q["sql"] and "ORDER BY" in q["sql"]
    ]
    assert batches and all(("json_each" in sql or "unnest" in sql) for sql in batches)


def _newest_first(messages) -> list[int]:
    return [m.pk for m in sorted(messages, key=lambda m: (m.created_at, m.pk), reverse=True)]


def test_a_word_search_alone_walks_its_rarest_words_entries_in_the_lists_order(
    client, auditor_user, messages, common_words, monkeypatch
):
    # Pages forward and back, and the count, as the list's own walk gives them: created_at out of
    # id order, and a prefix standing for two words ("result" for results and resultset, one
    # ordered read each, merged), with messages that have both (each found once).
    one, two = messages
    start = timezone.now() - timedelta(days=3)
    subjects = ["March results", "March resultset", "March results resultset", "March only"]
    made = [
        make_message(
            one.mailbox,
            payload=None,
            subject=subjects[n % 4],
            created_at=start + timedelta(minutes=(n * 37) % 41),
        )
        for n in range(40)
    ]
    matching = _newest_first([m for m in made if m.subject != "March only"])
    assert len(matching) == 30
    client.force_login(auditor_user)
    query = {"q": "march result"}
    response = client.get(reverse("messaging:list"), query)
    walk = response.context["filters"].word_walk
    assert walk is not None and set(walk.words) == {"results", "resultset"}
    assert response.context["filters"].matched_ids is None  # walked, not collected
    first = response.context["page"]
    assert "31 messages match these filters." in response.content.decode()
    second = client.get(reverse("messaging:list"), {**query, "after": first.next_cursor})
    second = second.context["page"]
    # `one` (now, "path_results") matches too, and is the newest.
    assert [m.pk for m in first.items + second.items] == [one.pk, *matching]
    assert second.next_cursor is None
    back = client.get(reverse("messaging:list"), {**query, "before": second.prev_cursor})
    back = back.context["page"]
    assert [m.pk for m in back.items] == [one.pk, *matching[:24]]
    assert back.prev_cursor is None and back.next_cursor == first.next_cursor
    # The same pages as the list's own walk (a filter that keeps every message turns it on).
    mailbox = {"mailbox": one.mailbox.pk}
    listed = client.get(reverse("messaging:list"), {**query, **mailbox})
    assert listed.context["filters"].word_walk is None
    assert listed.context["page"].items == first.items
    assert "31 messages match these filters." in listed.content.decode()
    assert client.get(reverse("messaging:list"), {"q": "march zzz"}).context["page"].items == []


def test_a_word_walk_starts_where_the_words_first_meet(
    client, auditor_user, messages, common_words, monkeypatch
):
    # "screening" is in every message; "oct1" only in three from long ago. The walk follows
    # "screening" (taken for the rarer: the longer, as every count is at its cap here) but starts
    # at "oct1"'s newest entry, not at the newest message.
    one, _ = messages
    now = timezone.now()
    old = [
        make_message(
            one.mailbox, payload=None, subject="Screening oct1", created_at=now - timedelta(days=60)
        )
        for _ in range(3)
    ]
    for n in range(40):
        make_message(
            one.mailbox,
            payload=None,
            subject="Screening",
            created_at=now - timedelta(days=59, minutes=-n),
        )
    walks, real = [], search._entries
    monkeypatch.setattr(
        search,
        "_entries",
        lambda words, cursor, *args, **kwargs: (
            kwargs.get("having") and walks.append(cursor) or real(words, cursor, *args, **kwargs)
        ),
    )
    client.force_login(auditor_user)
    response = client.get(reverse("messaging:list"), {"q": "screening oct1"})
    assert response.context["filters"].word_walk.words == ("screening",)
    assert [m.pk for m in response.context["page"].items] == _newest_first(old)
    assert "3 messages match these filters." in response.content.decode()
    newest_old = max((m.created_at, m.pk) for m in old)
    assert walks == [newest_old, newest_old]  # the page's walk and the count's


def test_a_word_walk_finds_only_the_messages_of_the_mailboxes_a_person_sees(
    client, messages, common_words
):
    from portal.accounts.roles import AUDITOR
    from tests.factories import make_organisation, make_user

    one, _ = messages
    theirs = make_mailbox("A1MB001", organisation=make_organisation(name="A", ods_code="A1"))
    seen = [make_message(theirs, payload=None, subject="March results") for _ in range(3)]
    make_message(one.mailbox, payload=None, subject="March results, resent")
    member = make_user(AUDITOR, organisations=[theirs.organisation])
    client.force_login(member)
    response = client.get(reverse("messaging:list"), {"q": "march results"})
    assert response.context["filters"].word_walk.within == (theirs.pk,)
    assert [m.pk for m in response.context["page"].items] == _newest_first(seen)
    assert "3 messages match these filters." in response.content.decode()
    # Staff who see every organisation: every match.
    staff = make_user(AUDITOR)
    client.force_login(staff)
    response = client.get(reverse("messaging:list"), {"q": "march results"})
    assert response.context["filters"].word_walk.within is None
    assert "5 messages match these filters." in response.content.decode()


def test_a_member_whose_reach_holds_every_mailbox_gets_the_lists_plain_walks(messages):
    # An organisation running NeoMesh for itself: its people see every mailbox, as staff do, so
    # the list is not narrowed to their mailboxes (one walk a mailbox, filters checked row by row).
    from portal.messaging.log import MessageLogFilterForm
    from tests.factories import make_organisation, make_user

    one, _ = messages
    member = make_user(organisations=[one.mailbox.organisation])
    assert MessageLogFilterForm({"direction": "in"}, user=member)._environment_mailboxes() is None
    page = MessageLogFilterForm({"q": "march"}, user=member).page(Message.objects.all())
    assert {m.pk for m in page.items} == {m.pk for m in messages}
    # Another organisation's mailbox appears: now their reach is a filter of its own.
    other = make_mailbox("B1MB001", organisation=make_organisation(name="B", ods_code="B1"))
    make_message(other, payload=None, subject="March elsewhere")
    form = MessageLogFilterForm({"q": "march"}, user=member)
    assert form._environment_mailboxes() == [one.mailbox.pk]
    assert {m.pk for m in form.page(Message.objects.all()).items} == {m.pk for m in messages}
    chosen = MessageLogFilterForm({"environment": "sandbox"}, user=member)
    assert chosen._environment_mailboxes() == [one.mailbox.pk]
