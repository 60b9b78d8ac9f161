"""Every statement the core runs, by name, in standard SQL: a dialect overrides only those
its database words differently (a subclass), and gets these with its own placeholders.

Parameters are ``?`` (in order) or ``?N`` (numbered), and bound in the order noted; results
of a table's rows are in ``Table.columns`` order, other results as noted.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from typing import Any

from boternity.models import MAX_BIGINT
from boternity.storage.tables import (
    BOTS,
    HISTORY,
    MEMORIES,
    MESSAGES,
    PENDING,
    SESSIONS,
    SOULS,
    SUMMARIES,
    Table,
)

#: Tokens a session reserves on its bot at a time. bots.tokens_reserved is what the bot's
#: deleted sessions used plus, per live session, reserved(its total): a bot's total is never
#: above it, and it never passes 2^63 - 1, so the total fits in 64 bits without the bot's row
#: being checked (or written) for every message.
RESERVE_STEP = 2**24


def reserved(total: int) -> int:
    """What a session with ``total`` tokens reserves: the next multiple of RESERVE_STEP above
    it, but no more than 2^63 - 1 unless the total itself is more."""
    return min((total // RESERVE_STEP + 1) * RESERVE_STEP, max(total, MAX_BIGINT))


def bot_columns(tokens: str, last_active: str) -> str:
    """BOTS columns of ``bots b``, with what is counted elsewhere added: ``tokens`` and
    ``last_active`` (SQL) become total_tokens_used and last_active_at."""
    return (
        BOTS.cols("b.")
        .replace("b.total_tokens_used", tokens)
        .replace("b.last_active_at", last_active)
    )


def insert(t: Table[Any]) -> str:
    """INSERT of a whole row, its values bound in column order."""
    return f"INSERT INTO {t.name} ({t.cols()}) VALUES ({', '.join('?' * len(t.columns))})"


def select(t: Table[Any], where: str, order: str = "") -> str:
    """SELECT of whole rows (``where`` may be empty: every row)."""
    return f"SELECT {t.cols()} FROM {t.name}{where and ' WHERE ' + where}{order and ' ORDER BY ' + order}"


def _page(t: Table[Any], where: str, key: tuple[str, ...], first: int) -> str:
    """The rows of ``t`` after a key (``key``'s columns, bound from ``?first`` on, then the
    limit), in key order: a page of a keyset scan."""
    after = ", ".join(f"?{first + i}" for i in range(len(key)))
    columns = ", ".join(key)
    return (
        select(t, f"{where} AND ({columns}) > ({after})", " ASC, ".join(key) + " ASC")
        + f" LIMIT ?{first + len(key)}"
    )


def quoted(name: str) -> str:
    """An identifier the database itself listed, quoted for SQL text."""
    return '"' + name.replace('"', '""') + '"'


#: Stands for a bound list of ids, read as a table ``ids`` with one column, ``value``.
#: Standard SQL has no list parameter: each dialect says how it binds one
#: (``Statements.id_list``), and a statement takes the list as its only parameter.
IDS = "<ids>"


def by_ids(t: Table[Any], column: str = "id") -> str:
    """The rows of ``t`` whose ``column`` is in a bound list of ids, in ``column`` order."""
    return select(t, f"{column} IN (SELECT ids.value FROM {IDS})", column)


def ids_in_range(table: str, where: str = "") -> str:
    """Ids from low to high (bound first), in id order, at most ``limit`` (bound last)."""
    return f"SELECT id FROM {table} WHERE id BETWEEN ? AND ?{where} ORDER BY id LIMIT ?"


def neighbours(table: str) -> str:
    """For each id of a bound list: it, the next id below it and the next above (or NULL)."""
    near = "(SELECT id FROM {} WHERE id {} ids.value ORDER BY id {} LIMIT 1)"
    below, above = near.format(table, "<", "DESC"), near.format(table, ">", "ASC")
    return f"SELECT ids.value, {below}, {above} FROM {IDS}"


SESSION_ORDER = "started_at DESC, id DESC"
PENDING_ORDER = "next_attempt_at ASC, id ASC"
MEMORY_ORDER = "importance DESC, created_at DESC, id DESC"


# --- the scope rule (docs/users.md) -----------------------------------------------------------
# A conversation with a user sees that user's memories and the bot's user-less ones; one
# without a user (NULL bound) sees only the user-less ones: ``user_id = NULL`` is never true.
# repositories.visible is the same rule in Python. Every read of memories for a conversation
# (listing, recall, full-text and semantic search, the duplicate check, the extraction
# prompt's known memories) goes through one of the two forms below.


def _owners(user: str, alias: str) -> tuple[str, str]:
    """The two kinds of rows a conversation with ``user`` (a placeholder) may see."""
    return f"{alias}user_id IS NULL", f"{alias}user_id = {user}"


def visible_to(user: str, alias: str = "") -> str:
    """The scope rule as a condition on memory rows (``alias``: "m." for a joined table);
    ``user`` is the placeholder bound to the conversation's user id, or to NULL."""
    return "({} OR {})".format(*_owners(user, alias))


def select_visible(
    cols: str, where: str, user: str, tail: str = "", *, limit_branches: bool = False
) -> str:
    """SELECT ``cols`` FROM session_memories WHERE ``where`` AND the scope rule, ``tail``
    (ORDER BY, LIMIT) applied to the whole: one branch per kind of owner, so each is one range
    of an index (neither backend's planner does that for an OR without statistics), and on
    SQLite ordered branches merge without a sort. PostgreSQL (15) sorts a UNION ALL whole
    unless its branches are ordered and limited on their own (``limit_branches``: each in a
    subquery with the ``tail``, so the outer ``tail`` merges at most twice the limit); without
    that, 50 memories of a bot with 100,000 cost a scan and sort of all of them. (SQLite
    would sort again after such subqueries.) ``cols`` are then plain column names, which the
    outer ``tail`` orders by. ``where`` and ``tail`` are repeated, so their placeholders must
    be numbered (``?1``)."""
    branches = [
        f"SELECT {cols} FROM session_memories WHERE {where} AND {owner}"
        for owner in _owners(user, "")
    ]
    if limit_branches and tail:
        branches = [f"SELECT * FROM ({b} {tail}) AS b{i}" for i, b in enumerate(branches)]
    return " UNION ALL ".join(branches) + (tail and " " + tail)


def visible_memories(*, limit_branches: bool = False) -> str:
    """get_memories: bot id, include superseded, user id|NULL, limit: the memories a
    conversation with that user sees (see select_visible for ``limit_branches``)."""
    return select_visible(
        MEMORIES.cols(), "bot_id = ?1 AND (?2 OR superseded_by IS NULL)", "?3",
        f"ORDER BY {MEMORY_ORDER} LIMIT ?4", limit_branches=limit_branches,
    )  # fmt: skip


#: Rows of one user of one bot (?1 bot id, ?2 user id), and the ids of that user's sessions.
_OWNED = "bot_id = ?1 AND user_id = ?2"
_SESSIONS_OF = f"SELECT id FROM chat_sessions WHERE {_OWNED}"
_MEMORIES_OF = f"SELECT id FROM session_memories WHERE {_OWNED}"

#: search_messages' filters, each a column of the session (``s``) that a keyword argument
#: narrows to one value, None meaning any: bound in this order as ?3, ?4, ... (after the query
#: text ?1 and the limit ?2). A new filter is one entry here and its argument in ChatCore.
#: ``without_user`` (True or NULL): only sessions without a user, as a conversation without a
#: user sees (docs/users.md, rule 3).
MESSAGE_FILTERS = {
    "bot_id": "s.bot_id",
    "user_id": "s.user_id",
    "without_user": "(s.user_id IS NULL)",
}


def message_filters() -> str:
    """The WHERE conditions of MESSAGE_FILTERS, for the dialects' search_messages."""
    return " AND ".join(
        f"({column} = ?{n} OR ?{n} IS NULL)"
        for n, column in enumerate(MESSAGE_FILTERS.values(), start=3)
    )


class Statements:
    # bots: a new bot reserves exactly what it has used (?10, total_tokens_used)
    insert_bot = (
        f"INSERT INTO bots ({BOTS.cols()}, tokens_reserved)"
        f" VALUES ({', '.join('?' * len(BOTS.columns))}, ?10)"
    )
    get_bot = select(BOTS, "id = ?")
    get_bot_by_slug = select(BOTS, "slug = ?")
    list_bots = select(  # status|None, category|None, limit, offset
        BOTS, "status = coalesce(?, status) AND category = coalesce(?, category)",
        "created_at DESC, id DESC LIMIT ? OFFSET ?",
    )  # fmt: skip
    update_bot = (  # name, slug, description, status, category, tags, user_id, updated_at, id
        "UPDATE bots SET name = ?, slug = ?, description = ?, status = ?, category = ?,"
        f" tags = ?, user_id = ?, updated_at = ? WHERE id = ? RETURNING {BOTS.cols()}"
    )
    delete_bot = "DELETE FROM bots WHERE id = ?"  # -> COUNT
    bump_soul_count = (  # bot id, updated_at -> a value when the bot exists
        "UPDATE bots SET version_count = version_count + 1, updated_at = ?2 WHERE id = ?1"
        " RETURNING id"
    )
    insert_soul = (  # id, bot id, content, hash, message, created_at -> the version, N+1
        f"INSERT INTO soul_versions ({SOULS.cols()})"
        " SELECT ?1, ?2, ?3, ?4, coalesce(max(version), 0) + 1, ?5, ?6"
        " FROM soul_versions WHERE bot_id = ?2 RETURNING version"
    )
    get_soul = select(SOULS, "bot_id = ? AND version = ?")
    latest_soul = select(SOULS, "bot_id = ?", "version DESC LIMIT 1")
    list_souls = select(SOULS, "bot_id = ?", "version ASC, id ASC")

    # chat sessions and messages
    count_conversation = (  # bot id -> COUNT; the new session reserves its first step
        "UPDATE bots SET conversation_count = conversation_count + 1,"
        f" tokens_reserved = tokens_reserved + {RESERVE_STEP}"
        f" WHERE id = ? AND tokens_reserved <= {MAX_BIGINT - RESERVE_STEP}"
    )
    bot_exists = "SELECT EXISTS (SELECT 1 FROM bots WHERE id = ?)"
    insert_session = insert(SESSIONS)
    insert_keyed_session = (  # SESSIONS, then session_key
        f"INSERT INTO chat_sessions ({SESSIONS.cols()}, session_key)"
        f" VALUES ({', '.join('?' * (len(SESSIONS.columns) + 1))})"
    )
    keyed_session = select(SESSIONS, "bot_id = ? AND session_key = ?")
    get_session = select(SESSIONS, "id = ?")
    update_session = (  # title, status, ended_at, id
        "UPDATE chat_sessions SET title = ?, status = ?, ended_at = ? WHERE id = ?"
        f" RETURNING {SESSIONS.cols()}"
    )
    list_sessions = select(SESSIONS, "bot_id = ?", f"{SESSION_ORDER} LIMIT ? OFFSET ?")
    # bot id, user id, limit, offset: the sessions of exactly one user; and of no user.
    user_sessions = select(
        SESSIONS, "bot_id = ? AND user_id = ?", f"{SESSION_ORDER} LIMIT ? OFFSET ?"
    )
    userless_sessions = select(
        SESSIONS, "bot_id = ? AND user_id IS NULL", f"{SESSION_ORDER} LIMIT ? OFFSET ?"
    )
    list_all_sessions = select(SESSIONS, "", f"{SESSION_ORDER} LIMIT ? OFFSET ?")
    all_user_sessions = select(SESSIONS, "user_id = ?", f"{SESSION_ORDER} LIMIT ? OFFSET ?")
    all_userless_sessions = select(SESSIONS, "user_id IS NULL", f"{SESSION_ORDER} LIMIT ? OFFSET ?")
    sessions_by_ids = by_ids(SESSIONS)
    active_sessions = select(SESSIONS, "bot_id = ? AND status = 'active'", SESSION_ORDER)
    delete_session = "DELETE FROM chat_sessions WHERE id = ?"  # -> COUNT
    #: The core's save_message unit also needs this one, which checks for overflow in the
    #: dialect's own way: tokens in, tokens out, at, session id -> seq, bot id, totals fit,
    #: total input tokens, total output tokens.
    bump_session = ""
    reserve_tokens = (  # more tokens reserved, bot id, the most there may be before -> a row
        "UPDATE bots SET tokens_reserved = tokens_reserved + ?1"
        " WHERE id = ?2 AND tokens_reserved <= ?3 RETURNING 1"
    )
    insert_message = insert(MESSAGES)
    get_message = select(MESSAGES, "id = ?")
    messages_by_ids = by_ids(MESSAGES)
    # messages are always seq 1..message_count: the first and the last are those two.
    first_and_last_messages = (
        f"SELECT {MESSAGES.cols('m.')} FROM chat_sessions s JOIN chat_messages m"
        " ON m.session_id = s.id AND m.seq IN (1, s.message_count)"
        f" WHERE s.id IN (SELECT ids.value FROM {IDS}) ORDER BY m.session_id, m.seq"
    )
    get_messages = select(MESSAGES, "session_id = ?", "seq ASC LIMIT ? OFFSET ?")
    recent_messages = select(MESSAGES, "session_id = ?", "seq DESC LIMIT ?")
    message_count = "SELECT message_count FROM chat_sessions WHERE id = ?"
    reset_message_count = "UPDATE chat_sessions SET message_count = 0 WHERE id = ? RETURNING id"
    # pop_message: messages are always seq 1..message_count, so the latest is message_count.
    pop_count = (  # session id -> the popped seq, when the session has messages
        "UPDATE chat_sessions SET message_count = message_count - 1"
        " WHERE id = ? AND message_count > 0 RETURNING message_count + 1"
    )
    pop_message = (  # session id, seq -> MESSAGES row
        f"DELETE FROM chat_messages WHERE session_id = ? AND seq = ? RETURNING {MESSAGES.cols()}"
    )
    pop_summaries = "DELETE FROM context_summaries WHERE session_id = ? AND messages_end >= ?"
    clear_messages = "DELETE FROM chat_messages WHERE session_id = ?"  # -> COUNT
    clear_summaries = "DELETE FROM context_summaries WHERE session_id = ?"
    clear_pending = "DELETE FROM pending_memory_extractions WHERE session_id = ?"
    count_sessions = "SELECT count(*) FROM chat_sessions"
    count_bot_sessions = "SELECT count(*) FROM chat_sessions WHERE bot_id = ?"
    count_messages = "SELECT count(*) FROM chat_messages"
    #: Full-text search over messages, given by each dialect: Dialect.search_text(terms, False),
    #: limit, then MESSAGE_FILTERS -> id, session_id, seq, role, created_at, the content's
    #: length and its first READ_CHARS characters, the session's bot id and user id, and the
    #: start of the content with its matched words marked (core.search), best match first,
    #: then created_at DESC, id DESC.
    search_messages = ""
    #: The marked text of search_messages is the start of the content itself with the marks
    #: put in (so marker characters of the message are told from the marks by where they
    #: stand, core.search); False: a copy of it with no marker characters of its own.
    marks_in_content = False
    #: Messages waiting to be indexed, where a dialect indexes new messages in batches (SQLite):
    #: index them, then stop them waiting; search_messages runs both first. Empty: none wait.
    index_waiting = ""
    clear_waiting = ""

    # memories
    memory_refs = (  # bot, session, source message, superseded_by, id -> bot exists,
        # the session's bot and user, the message's session, bot and user, the superseding
        # memory's bot and user, id taken: everything a new memory refers to, in one round trip
        "SELECT EXISTS (SELECT 1 FROM bots WHERE id = ?1),"
        " (SELECT bot_id FROM chat_sessions WHERE id = ?2),"
        " (SELECT user_id FROM chat_sessions WHERE id = ?2),"
        " (SELECT session_id FROM chat_messages WHERE id = ?3),"
        " (SELECT s.bot_id FROM chat_messages m JOIN chat_sessions s ON s.id = m.session_id"
        "  WHERE m.id = ?3),"
        " (SELECT s.user_id FROM chat_messages m JOIN chat_sessions s ON s.id = m.session_id"
        "  WHERE m.id = ?3),"
        " (SELECT bot_id FROM session_memories WHERE id = ?4),"
        " (SELECT user_id FROM session_memories WHERE id = ?4),"
        " EXISTS (SELECT 1 FROM session_memories WHERE id = ?5)"
    )
    insert_memory = insert(MEMORIES)
    insert_history = insert(HISTORY)
    get_memory = select(MEMORIES, "id = ?")
    get_memories = visible_memories()
    # bot id, include superseded, limit: every user's (admin listings).
    all_memories = select(
        MEMORIES, "bot_id = ? AND (? OR superseded_by IS NULL)", f"{MEMORY_ORDER} LIMIT ?"
    )
    memories_by_session = select(MEMORIES, "session_id = ?", "created_at ASC, id ASC")
    # bot id, include superseded: every user's; and bot id, include superseded, user id|NULL:
    # what a conversation with that user sees.
    count_memories = (
        "SELECT count(*) FROM session_memories WHERE bot_id = ? AND (? OR superseded_by IS NULL)"
    )
    count_visible_memories = "SELECT count(*) FROM ({}) v".format(
        select_visible("id", "bot_id = ?1 AND (?2 OR superseded_by IS NULL)", "?3")
    )
    # The memories a memory superseded (id, fact, user_id), and the old memory a supersede
    # replaces (bot_id, superseded_by, fact, user_id): both locked for the transaction where
    # rows can be.
    superseded_by = "SELECT id, fact, user_id FROM session_memories WHERE superseded_by = ?"
    lock_memory = "SELECT bot_id, superseded_by, fact, user_id FROM session_memories WHERE id = ?"
    delete_memory = "DELETE FROM session_memories WHERE id = ? RETURNING bot_id, fact, user_id"
    delete_all_memories = (
        "DELETE FROM session_memories WHERE bot_id = ? RETURNING id, fact, user_id"
    )
    # bot id, Dialect.search_text(terms, match all), include superseded, limit, every user (a
    # flag), user id|NULL: the full-text index picks the rows, so the scope is a plain
    # condition (visible_to) here.
    search = ""
    # Optional (see MemoryCore.search_memories): a JSON array of single-term queries -> rows
    # (-1, an upper bound of the indexed rows' count), then (i, rows matching term i), by i.
    term_counts = ""
    # As search, among the rows that also match ?7 (some of the terms), each row followed by
    # its score and, the same on every row and of the same snapshot, what term_counts gives
    # for ?8 (JSON text).
    search_among = ""
    # As search_among, each row followed by its score and what the dialect's pruning needs to
    # check the result (one snapshot); ?8: what it looks up (see MemoryCore._search_candidates).
    search_candidates = ""
    # The bot's live memories (id, fact), for the duplicate check; taken after lock_bot, so
    # check and insert are one step per bot. A writer that runs one unit at a time (SQLite)
    # needs no lock: an empty statement is not run.
    lock_bot = ""  # bot id
    # bot id, user id|NULL: only what that user's conversations see, so a fact another user
    # holds is neither a duplicate nor revealed by a ConflictError.
    live_facts = select_visible("id, fact", "bot_id = ?1 AND superseded_by IS NULL", "?2")
    history = select(HISTORY, "memory_id = ?", "created_at ASC, id ASC")
    supersede = "UPDATE session_memories SET superseded_by = ? WHERE id = ?"  # new id, old id

    # memory embeddings and the vectors a process keeps (see vectors.py). A unit that changes
    # them first raises the bot's memory_version (locking the bot row before any memory row,
    # so a bot's versions commit in order), then stamps the embeddings it writes with it and
    # lists in memory_changes the memories it superseded, restored or deleted.
    bump_memory_version = (  # bot id -> the new version (None: no such bot)
        "UPDATE bots SET memory_version = memory_version + 1 WHERE id = ? RETURNING memory_version"
    )
    # bot id -> ONE: the version, and the version up to which memory_changes was pruned
    memory_version = "SELECT memory_version, changes_pruned_to FROM bots WHERE id = ?"
    # The notes older than a version go (bot id, version), and the bot says so (version, bot
    # id): a process holding vectors older than that reads them all again (vectors.py).
    prune_changes = "DELETE FROM memory_changes WHERE bot_id = ? AND version <= ?"
    note_pruned = "UPDATE bots SET changes_pruned_to = ? WHERE id = ?"
    log_change = (  # bot id, version, memory id
        "INSERT INTO memory_changes (bot_id, version, memory_id) VALUES (?, ?, ?)"
        " ON CONFLICT DO NOTHING"
    )
    log_all_memories = (  # version, bot id: every memory of the bot, before deleting them
        "INSERT INTO memory_changes (bot_id, version, memory_id)"
        " SELECT bot_id, ?1, id FROM session_memories WHERE bot_id = ?2 ON CONFLICT DO NOTHING"
    )
    memory_bot = "SELECT bot_id FROM session_memories WHERE id = ?"  # memory id -> VALUE
    # Written from the memory row itself, replacing the model's earlier vector; nothing when
    # the memory is gone. model, dimension, vector, created_at, version, memory id -> bot id
    save_embedding = (
        "INSERT INTO memory_embeddings"
        " (memory_id, model, bot_id, dimension, vector, created_at, version)"
        " SELECT id, ?1, bot_id, ?2, ?3, ?4, ?5 FROM session_memories WHERE id = ?6"
        " ON CONFLICT (memory_id, model) DO UPDATE SET dimension = excluded.dimension,"
        " vector = excluded.vector, created_at = excluded.created_at, version = excluded.version"
        " RETURNING bot_id"
    )
    # Memories with no vector of a model: live ones first, the most useful first.
    # bot id|None, model, limit -> MEMORIES rows; bot id|None, model -> VALUE
    # bot id or NULL, model, dimension or NULL (a vector of another length counts as none)
    _unembedded = (
        " FROM session_memories m WHERE m.bot_id = coalesce(?1, m.bot_id) AND NOT EXISTS"
        " (SELECT 1 FROM memory_embeddings e WHERE e.memory_id = m.id AND e.model = ?2"
        " AND e.dimension = coalesce(?3, e.dimension))"
    )
    unembedded = (
        f"SELECT {MEMORIES.cols('m.')}{_unembedded}"
        " ORDER BY m.superseded_by IS NOT NULL, m.importance DESC, m.created_at DESC, m.id"
        " LIMIT ?4"
    )
    count_unembedded = f"SELECT count(*){_unembedded}"
    unembedded_of = (  # a bound list of ids (IDS), then the model, dimension or NULL -> the
        # ids without one (of that dimension)
        f"SELECT ids.value FROM {IDS} WHERE NOT EXISTS"
        " (SELECT 1 FROM memory_embeddings e WHERE e.memory_id = ids.value AND e.model = ?"
        " AND e.dimension = coalesce(?, e.dimension))"
    )
    # A bot's vectors of one model written after a version (-1: all of them):
    # bot id, model, version -> memory id, vector bytes, live, the memory's user (whose
    # conversations may find it: vectors.BotVectors.candidates)
    load_embeddings = (
        "SELECT e.memory_id, e.vector, m.superseded_by IS NULL, m.user_id"
        " FROM memory_embeddings e JOIN session_memories m ON m.id = e.memory_id"
        " WHERE e.bot_id = ? AND e.model = ? AND e.version > ?"
    )
    # The memories superseded, restored or deleted after a version, as they are now:
    # bot id, version -> memory id, exists, live
    changed_memories = (
        "SELECT DISTINCT c.memory_id, m.id IS NOT NULL, m.superseded_by IS NULL"
        " FROM memory_changes c LEFT JOIN session_memories m ON m.id = c.memory_id"
        " WHERE c.bot_id = ? AND c.version > ?"
    )
    memories_by_ids = by_ids(MEMORIES)  # a bound list of ids (IDS)

    # the extraction queue
    insert_pending = (  # PENDING -> id, inserted only when the session exists and is the bot's
        f"INSERT INTO pending_memory_extractions ({PENDING.cols()})"
        " SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10 FROM chat_sessions"
        " WHERE id = ?2 AND bot_id = ?3 RETURNING id"
    )
    session_bot = "SELECT bot_id FROM chat_sessions WHERE id = ?"
    pending_for_bot = select(PENDING, "bot_id = ? AND attempt_count < ?", PENDING_ORDER)
    all_pending = select(PENDING, "bot_id = coalesce(?, bot_id)", PENDING_ORDER)
    get_pending = select(PENDING, "id = ?")
    delete_pending = "DELETE FROM pending_memory_extractions WHERE id = ?"  # -> COUNT
    update_pending = (  # attempt_count, last_attempt_at, next_attempt_at, error_message, id
        "UPDATE pending_memory_extractions SET attempt_count = ?, last_attempt_at = ?,"
        f" next_attempt_at = ?, error_message = ? WHERE id = ? RETURNING {PENDING.cols()}"
    )
    claim = ""  # now, end of the lease, max attempts, bot id|None, limit -> PENDING rows

    # context summaries
    insert_summary = (  # SUMMARIES -> id, inserted only when the session has the messages
        f"INSERT INTO context_summaries ({SUMMARIES.cols()})"
        " SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 FROM chat_sessions"
        " WHERE id = ?2 AND message_count >= ?5 RETURNING id"
    )
    # ids by prefix: every kind's ids in one key order (text and uuid order agree), so a
    # prefix is a range scan of the primary key, and an id's neighbours tell how long a
    # prefix must be to be unique.
    ids_in_range_bots = ids_in_range("bots")
    ids_in_range_chat_sessions = ids_in_range(  # low, high, bot id|None, limit
        "chat_sessions", " AND bot_id = coalesce(?, bot_id)"
    )
    ids_in_range_session_memories = ids_in_range("session_memories")
    ids_in_range_pending_memory_extractions = ids_in_range("pending_memory_extractions")
    neighbours_bots = neighbours("bots")
    neighbours_chat_sessions = neighbours("chat_sessions")
    neighbours_session_memories = neighbours("session_memories")
    neighbours_pending_memory_extractions = neighbours("pending_memory_extractions")
    # A user's data (bot id, user id), to erase and to export. Rows hanging off the user's
    # sessions are found through them; memories and their history carry the user.
    user_session_ids = "SELECT id FROM chat_sessions WHERE bot_id = ? AND user_id = ?"
    memory_owners = (  # bot id, limit -> user id|NULL, count; most first
        "SELECT user_id, count(*) AS n FROM session_memories WHERE bot_id = ?1"
        " GROUP BY user_id ORDER BY n DESC, user_id IS NOT NULL, user_id LIMIT ?2"
    )
    count_user = (  # -> sessions, messages, summaries, jobs, memories, history, embeddings
        f"SELECT (SELECT count(*) FROM chat_sessions WHERE {_OWNED}),"
        f" (SELECT count(*) FROM chat_messages WHERE session_id IN ({_SESSIONS_OF})),"
        f" (SELECT count(*) FROM context_summaries WHERE session_id IN ({_SESSIONS_OF})),"
        f" (SELECT count(*) FROM pending_memory_extractions WHERE session_id IN ({_SESSIONS_OF})),"
        f" (SELECT count(*) FROM session_memories WHERE {_OWNED}),"
        f" (SELECT count(*) FROM memory_history WHERE {_OWNED}),"
        f" (SELECT count(*) FROM memory_embeddings WHERE memory_id IN ({_MEMORIES_OF}))"
    )
    # The user's memories leave every process's cached vectors: the notes of earlier changes
    # to them go (bot id, user id; every memory of the user has history), and one note per
    # memory at this erasure's version (bumped first) says it is gone (version, bot id, user
    # id).
    forget_user_changes = (  # the user's memories: their own 'added' rows (a 'repeated' row
        # of the user may be in the history of another's memory, whose notes stay)
        "DELETE FROM memory_changes WHERE bot_id = ?1 AND memory_id IN"
        f" (SELECT memory_id FROM memory_history WHERE {_OWNED} AND event = 'added')"
    )
    note_user_memories = (
        "INSERT INTO memory_changes (bot_id, version, memory_id)"
        " SELECT bot_id, ?1, id FROM session_memories WHERE bot_id = ?2 AND user_id = ?3"
    )
    forget_user_embeddings = (  # -> COUNT
        f"DELETE FROM memory_embeddings WHERE memory_id IN ({_MEMORIES_OF})"
    )
    forget_user_jobs = (  # -> COUNT
        f"DELETE FROM pending_memory_extractions WHERE session_id IN ({_SESSIONS_OF})"
    )
    forget_user_summaries = f"DELETE FROM context_summaries WHERE session_id IN ({_SESSIONS_OF})"
    forget_user_messages = f"DELETE FROM chat_messages WHERE session_id IN ({_SESSIONS_OF})"
    forget_user_memories = f"DELETE FROM session_memories WHERE {_OWNED}"  # -> COUNT
    forget_user_history = f"DELETE FROM memory_history WHERE {_OWNED}"  # -> COUNT
    # A user's rows for export_user_parts, a page at a time: after a row's ordering key, a limit.
    # Of one user: bot id, user id, then the key of the last row read, limit.
    export_page_sessions = _page(SESSIONS, _OWNED, ("started_at", "id"), 3)
    export_page_memories = _page(MEMORIES, _OWNED, ("created_at", "id"), 3)
    export_page_history = _page(HISTORY, _OWNED, ("created_at", "id"), 3)
    export_page_embeddings = (
        "SELECT memory_id, model, dimension FROM memory_embeddings"
        f" WHERE memory_id IN ({_MEMORIES_OF}) AND (memory_id, model) > (?3, ?4)"
        " ORDER BY memory_id, model LIMIT ?5"
    )
    # Of one session: session id, then the key of the last row read, limit.
    export_page_messages = _page(MESSAGES, "session_id = ?1", ("seq",), 2)
    export_page_summaries = _page(SUMMARIES, "session_id = ?1", ("messages_end", "id"), 2)
    export_session_jobs = select(PENDING, "session_id = ?", "created_at ASC, id ASC")
    latest_summary = select(
        SUMMARIES, "session_id = ?", "messages_end DESC, created_at DESC, id DESC LIMIT 1"
    )
    list_summaries = select(SUMMARIES, "session_id = ?", "messages_end ASC, created_at ASC, id ASC")

    # the migration ledger (storage/migrations.py)
    ledger_exists = ""  # -> true when schema_migrations exists; must be given
    create_ledger = ""  # must be given
    # Held to the end of the transaction; empty where a write transaction excludes others.
    lock_migrations = ""
    applied_migrations = "SELECT version, checksum FROM schema_migrations"
    record_migration = (  # version, name, checksum, applied_at
        "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)"
    )

    #: A bound list of ids as a table ``ids`` with one column ``value`` (see IDS): must be
    #: given by every dialect.
    id_list = ""

    def __init__(self) -> None:
        self._rewrite(lambda sql: sql.replace(IDS, self.id_list))

    def numbered(self) -> Statements:
        """Every ``?`` placeholder rewritten as ``$N`` (PostgreSQL's style)."""
        return self._rewrite(_numbered)

    def _rewrite(self, change: Callable[[str], str]) -> Statements:
        for name in dir(self):
            if not name.startswith("_") and isinstance(sql := getattr(self, name), str):
                setattr(self, name, change(sql))
        return self


def _numbered(sql: str) -> str:
    count = itertools.count(1)
    return re.sub(r"\?(\d*)", lambda m: f"${m[1] or next(count)}", sql)
