"""search_messages: full-text search over the messages of every session, on every backend."""

from __future__ import annotations

import random
import re
import string
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from boternity import Store
from boternity.errors import ValidationError
from boternity.models import (
    MAX_MESSAGE_LENGTH,
    Bot,
    ChatMessage,
    ChatSession,
    MessageHit,
    MessageRole,
)
from tests.conformance import factories as f

#: core.search: what is searched of each message, and how long a snippet may be.
SEARCHED_CHARS = 50_000
SNIPPET_CHARS = 160


async def _session(store: Store, bot: Bot | None = None) -> ChatSession:
    if bot is None:
        bot = await f.new_bot(store)
    return await store.chat.create_session(f.session(bot.id))


async def _say(store: Store, session: ChatSession, content: str, **kw: object) -> ChatMessage:
    return await store.chat.save_message(f.message(session.id, content, **kw))


def _marked(hit: MessageHit) -> list[str]:
    return [text for text, matched in hit.parts() if matched]


async def _found(store: Store, query: str, **kw: object) -> list[uuid.UUID]:
    return [h.message_id for h in await store.chat.search_messages(query, **kw)]  # type: ignore[arg-type]


async def test_a_hit_carries_the_message_its_bot_and_a_marked_snippet(store: Store) -> None:
    bot = await f.new_bot(store)
    session = await _session(store, bot)
    await _say(store, session, "Good morning")
    said = await _say(store, session, "My sister lives in Lisbon now", role="assistant")
    [hit] = await store.chat.search_messages("lisbon")
    assert (hit.message_id, hit.session_id, hit.seq, hit.role, hit.created_at) == (
        said.id,
        session.id,
        2,
        MessageRole.ASSISTANT,
        said.created_at,
    )
    assert (hit.length, hit.user_id) == (len(said.content), None)
    assert hit.bot_id == bot.id
    assert hit.snippet == "My sister lives in Lisbon now"
    assert hit.marks == ((19, 25),)
    assert hit.parts() == [("My sister lives in ", False), ("Lisbon", True), (" now", False)]


async def test_search_spans_sessions_and_bots_and_the_bot_filter_narrows_it(store: Store) -> None:
    ana, ben = await f.new_bot(store), await f.new_bot(store)
    s1, s2, s3 = await _session(store, ana), await _session(store, ana), await _session(store, ben)
    a = await _say(store, s1, "The ferry to Tangier leaves at noon")
    b = await _say(store, s2, "Tangier was lovely")
    c = await _say(store, s3, "Never been to Tangier")
    await _say(store, s3, "Something else entirely")
    assert set(await _found(store, "tangier")) == {a.id, b.id, c.id}
    assert set(await _found(store, "tangier", bot_id=ana.id)) == {a.id, b.id}
    assert await _found(store, "tangier", bot_id=ben.id) == [c.id]
    assert await _found(store, "tangier", bot_id=uuid.uuid4()) == []  # no such bot: no hits
    assert all(h.bot_id == ana.id for h in await store.chat.search_messages("t", bot_id=ana.id))


async def test_words_are_stemmed_case_folded_and_any_word_matches(store: Store) -> None:
    session = await _session(store)
    lives = await _say(store, session, "She LIVES by the harbour")
    cats = await _say(store, session, "Two cats, Miso and Tofu")
    assert await _found(store, "living") == [lives.id]
    assert await _found(store, "Cat") == [cats.id]
    assert set(await _found(store, "where does she live with her cat?")) == {lives.id, cats.id}
    [hit] = await store.chat.search_messages("live")
    assert _marked(hit) == ["LIVES"]  # marked as written


async def test_relevance_first_then_newest(store: Store) -> None:
    session = await _session(store)
    once = await _say(store, session, "tea with lemon and honey", created_at=f.at(1))
    thrice = await _say(store, session, "tea tea tea and honey", created_at=f.at(0))
    assert await _found(store, "tea") == [thrice.id, once.id]
    # Equal relevance: the newest first, then the highest id.
    same = [await _say(store, session, "zebra crossing", created_at=f.at(t)) for t in (5, 9, 7)]
    assert await _found(store, "zebra") == [same[1].id, same[2].id, same[0].id]
    tied = [await _say(store, session, "okapi sighting", created_at=f.at(3)) for _ in range(3)]
    assert await _found(store, "okapi") == sorted((m.id for m in tied), reverse=True)


async def test_limit(store: Store) -> None:
    session = await _session(store)
    for i in range(5):
        await _say(store, session, f"walrus number {i}", created_at=f.at(i))
    assert len(await store.chat.search_messages("walrus")) == 5
    assert len(await store.chat.search_messages("walrus", limit=2)) == 2
    assert await store.chat.search_messages("walrus", limit=0) == []
    for bad in (-1, True, 1.5, "3", 2**63):
        with pytest.raises(ValidationError, match="limit"):
            await store.chat.search_messages("walrus", limit=bad)  # type: ignore[arg-type]


async def test_bad_arguments_are_refused_before_anything_is_searched(store: Store) -> None:
    for query in (None, 42, b"walrus"):
        with pytest.raises(ValidationError, match="query"):
            await store.chat.search_messages(query)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="bot_id"):
        await store.chat.search_messages("walrus", bot_id="not-a-uuid")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="bot_id"):  # even when nothing would be searched
        await store.chat.search_messages("", bot_id=42)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("content", "queries", "marked"),
    [
        ("Her sister Zoë plays the cello", ["zoe", "Zoë", "ZOË", "Zoe\u0308"], "Zoë"),
        ("Her aunt Zoe\u0308 plays the cello", ["zoe", "Zoë"], "Zoe\u0308"),  # decomposed
        ("Ordered a crème brûlée at the Café", ["brulee", "BRÛLÉE"], "brûlée"),
        ("Lives in São Paulo", ["sao", "SÃO"], "São"),
        ("Reads Dvořák", ["dvorak"], "Dvořák"),
    ],
)
async def test_diacritics_fold_both_ways_and_the_word_is_marked_as_written(
    store: Store, content: str, queries: list[str], marked: str
) -> None:
    session = await _session(store)
    said = await _say(store, session, content)
    await _say(store, session, "Unrelated words about tea")
    for query in queries:
        hits = await store.chat.search_messages(query)
        assert [h.message_id for h in hits] == [said.id], query
        assert _marked(hits[0]) == [marked], query


async def test_letters_that_are_not_accented_forms_stay_distinct(store: Store) -> None:
    session = await _session(store)
    await _say(store, session, "Søren lives on Hauptstraße")
    for query in ("soren", "hauptstrasse"):
        assert await store.chat.search_messages(query) == []
    assert len(await store.chat.search_messages("Søren")) == 1


# --- the index follows every delete ------------------------------------------------------


async def test_pop_message_takes_the_message_out_of_the_index(store: Store) -> None:
    session = await _session(store)
    kept = await _say(store, session, "kept: narwhal")
    await _say(store, session, "popped: narwhal platypus")
    await store.chat.pop_message(session.id)
    assert await _found(store, "platypus") == []
    assert await _found(store, "narwhal") == [kept.id]
    # The next message takes the popped seq (and, on SQLite, its row): only its words count.
    again = await _say(store, session, "replacement: wombat")
    assert again.seq == 2
    assert await _found(store, "platypus") == []
    assert await _found(store, "wombat") == [again.id]
    assert _marked((await store.chat.search_messages("wombat"))[0]) == ["wombat"]


async def test_clear_messages_empties_the_sessions_part_of_the_index(store: Store) -> None:
    session, other = await _session(store), await _session(store)
    for i in range(3):
        await _say(store, session, f"capybara {i}")
    elsewhere = await _say(store, other, "capybara elsewhere")
    assert await store.chat.clear_messages(session.id) == 3
    assert await _found(store, "capybara") == [elsewhere.id]
    fresh = await _say(store, session, "capybara again")
    assert set(await _found(store, "capybara")) == {elsewhere.id, fresh.id}


async def test_deleting_a_session_or_a_bot_removes_its_messages_from_the_index(
    store: Store,
) -> None:
    ana, ben = await f.new_bot(store), await f.new_bot(store)
    s1, s2, s3 = await _session(store, ana), await _session(store, ana), await _session(store, ben)
    await _say(store, s1, "axolotl one")
    survivor = await _say(store, s2, "axolotl two")
    other = await _say(store, s3, "axolotl three")
    await store.chat.delete_session(s1.id)
    assert set(await _found(store, "axolotl")) == {survivor.id, other.id}
    await store.bots.delete_bot(ana.id)
    assert await _found(store, "axolotl") == [other.id]
    assert await _found(store, "axolotl", bot_id=ana.id) == []


async def test_a_failed_save_leaves_nothing_in_the_index(store: Store) -> None:
    session = await _session(store)
    ok = await _say(store, session, "quokka first")
    with pytest.raises(ValidationError):  # the second would overflow the session's totals
        await store.chat.save_messages(
            [
                f.message(session.id, "quokka batch one", input_tokens=2**62),
                f.message(session.id, "quokka batch two", input_tokens=2**62),
            ]
        )
    assert await _found(store, "quokka") == [ok.id]


# --- hostile queries and text ------------------------------------------------------------

HOSTILE = [
    "",
    "   ",
    '"',
    "'",
    'tea" OR "x',
    "*",
    "NEAR(a b)",
    "tea AND",
    "(((",
    "-tea",
    "'; DROP TABLE chat_messages; --",
    "a & b | !c <-> d",
    ":*",
    "content:tea",
    "^tea",
    "\\",
    "\x00tea\x00",
    "\x1b[31mtea\x07",
    "tea\u202e",
    "\ufdd0tea\ufdd1",
    "🚀🚀",
    "the of and",
    "tea " * 2500,
    "x" * 10_000,
    "é" * 10_000,
]


@pytest.mark.parametrize("query", HOSTILE, ids=lambda q: repr(q[:20]))
async def test_hostile_queries_are_words_never_syntax(store: Store, query: str) -> None:
    session = await _session(store)
    tea = await _say(store, session, "Green tea, no sugar")
    await _say(store, session, "Coffee please")
    found = await _found(store, query)
    # The same answer on every backend: the message with the query's words, if any ("tea";
    # "31mtea" in the escape sequence is one word), and nothing else.
    assert found == ([tea.id] if "tea" in re.findall(r"\w+", query) else []), query
    assert await store.chat.get_message_count(session.id) == 2


async def test_a_hostile_query_still_matches_its_words(store: Store) -> None:
    session = await _session(store)
    berlin = await _say(store, session, "Moved to Berlin")
    tea = await _say(store, session, "Prefers green tea")
    found = await _found(store, '"berlin" OR (tea* AND -coffee) NEAR/2 content:')
    assert set(found) == {berlin.id, tea.id}


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(query=st.text(max_size=80))
async def test_any_text_is_a_valid_query(store: Store, query: str) -> None:
    sessions = await store.chat.count_sessions()
    session = await _session(store) if sessions == 0 else None
    if session is not None:
        await _say(store, session, "a plain message about tea")
    for hit in await store.chat.search_messages(query):
        assert all(0 <= s < e <= len(hit.snippet) for s, e in hit.marks)


async def test_stored_text_that_looks_like_markers_or_syntax_is_just_text(store: Store) -> None:
    session = await _session(store)
    odd = '\ufdd0pangolin\ufdd1 \ufdd1 \ufdd0 \x1b[2J "quoted" NEAR(x) pangolin*'
    said = await _say(store, session, odd)
    [hit] = await store.chat.search_messages("pangolin")
    assert hit.snippet == " ".join(odd.split())  # the text comes back exact
    assert all(0 <= s < e <= len(hit.snippet) for s, e in hit.marks)
    assert "pangolin" in _marked(hit)
    assert await _found(store, "quoted") == [said.id]


# --- long messages -----------------------------------------------------------------------


async def test_the_snippet_is_a_short_window_around_the_first_match(store: Store) -> None:
    session = await _session(store)
    filler = " ".join(["lorem ipsum dolor sit amet"] * 100)
    said = await _say(store, session, f"{filler}\n\n  the  Manatee\tsurfaced. {filler}")
    [hit] = await store.chat.search_messages("manatee")
    assert hit.message_id == said.id
    assert len(hit.snippet) <= SNIPPET_CHARS + 2
    assert hit.snippet.startswith("…") and hit.snippet.endswith("…")
    assert "the Manatee surfaced." in hit.snippet  # whitespace runs are one space
    assert _marked(hit) == ["Manatee"]
    # A message without a marked word at the start shows its start.
    short = await _say(store, session, "manatee")
    hits = await store.chat.search_messages("manatee")
    assert [h.snippet for h in hits if h.message_id == short.id] == ["manatee"]


async def test_the_first_50000_characters_of_a_message_are_searched(store: Store) -> None:
    session = await _session(store)
    pad = "filler " * (SEARCHED_CHARS // 7)
    inside = pad[: SEARCHED_CHARS - len(" inside")] + " inside"
    said = await _say(store, session, inside + " outside")
    assert len(inside) == SEARCHED_CHARS
    assert await _found(store, "inside") == [said.id]
    assert await _found(store, "outside") == []
    [hit] = await store.chat.search_messages("inside")
    assert _marked(hit) == ["inside"]


async def test_the_longest_message_of_distinct_words_is_stored_and_searchable(
    store: Store,
) -> None:
    # A full-text vector of a million characters of distinct words would pass PostgreSQL's
    # 1 MB limit: the index covers the start of the message, so the message is still saved.
    rng = random.Random(14)
    words = ("".join(rng.choices(string.ascii_lowercase, k=7)) for _ in range(125_000))
    content = ("needle " + " ".join(words))[:MAX_MESSAGE_LENGTH]
    session = await _session(store)
    said = await _say(store, session, content)
    assert (await store.chat.get_message(said.id)).content == content  # type: ignore[union-attr]
    assert await _found(store, "needle") == [said.id]


@pytest.mark.parametrize(
    "content",
    [
        "\ufdd0apple\ufdd1 banana",  # a stored "marked" word
        "\ufdd0apple banana \ufdd1 cherry",  # the match inside a stored pair
        "banana \ufdd1 apple \ufdd0 cherry",  # pairs reversed
        "\ufdd0 \ufdd0 banana \ufdd1\ufdd1 apple",  # doubled around the match itself
        "\ufdd1\ufdd0 banana \ufdd1\ufdd0 \ufdd0apple\ufdd1",
    ],
)
async def test_marker_characters_in_a_message_mark_nothing(store: Store, content: str) -> None:
    # The database marks matched words with U+FDD0/U+FDD1; the same characters in the
    # message itself are text: only the word that matched is marked, wherever they stand.
    # (Glued to a word they are part of it on SQLite, where FTS5 takes an unassigned
    # character for a letter, and apart from it on PostgreSQL: not tested here.)
    session = await _session(store)
    await _say(store, session, content)
    [hit] = await store.chat.search_messages("banana")
    assert _marked(hit) == ["banana"], hit
    assert all(0 <= s < e <= len(hit.snippet) for s, e in hit.marks)


async def test_a_hit_on_a_huge_message_is_small(store: Store) -> None:
    # A hit names the message and carries a snippet: never the megabyte itself, however
    # many hits are asked for (get_message reads the whole message).
    session = await _session(store)
    huge = await _say(store, session, ("okapi " + "x" * 99 + " ") * (MAX_MESSAGE_LENGTH // 106))
    [hit] = await store.chat.search_messages("okapi", limit=2**62)
    assert hit.message_id == huge.id and hit.length == len(huge.content)
    assert len(hit.snippet) <= SNIPPET_CHARS + 2 and hit.snippet.endswith("…")
    assert sum(len(v) for v in vars_of(hit) if isinstance(v, str)) < 1_000
    assert (await store.chat.get_message(hit.message_id)) == huge


def vars_of(hit: MessageHit) -> list[object]:
    return [getattr(hit, name) for name in hit.__slots__]
