"""The PostgreSQL dialect: its SQL, and the two units it runs as one statement.

Columns are native (uuid, timestamptz, bigint, text[], boolean), so values pass through
asyncpg unchanged; message metadata is JSON text, as on every backend.

A bot's total_tokens_used and last_active_at columns hold what its deleted sessions
contributed; the live sessions' share is added when read (_BOT_SELECT), so save_message does
not lock the bot row: sessions of one bot do not queue on one row lock held through every
commit's WAL flush. See tokens_reserved in the schema for how the total still stays within
bigint.
"""

from __future__ import annotations

import uuid
from typing import Any

from boternity.models import MAX_BIGINT, ChatMessage
from boternity.storage.dialect import ONE, VALUE, Dialect, Unit, missing
from boternity.storage.repositories import ChatCore
from boternity.storage.search import MARK_CLOSE, MARK_OPEN, READ_CHARS, SEARCHED_CHARS
from boternity.storage.sql import (
    PENDING_ORDER,
    RESERVE_STEP,
    Statements,
    bot_columns,
    message_filters,
    visible_memories,
    visible_to,
)
from boternity.storage.tables import BOTS, MEMORIES, MESSAGES, PENDING, SESSIONS, SUMMARIES


def _reserve_steps(tokens_in: str, tokens_out: str) -> str:
    """SQL for floor((in + out) / RESERVE_STEP) of two non-negative bigints, in bigint
    arithmetic that cannot overflow (their sum might)."""
    c = RESERVE_STEP
    return (
        f"({tokens_in} / {c} + {tokens_out} / {c} + ({tokens_in} % {c} + {tokens_out} % {c}) / {c})"
    )


def _reserved(total: str) -> str:
    """SQL for what a session with numeric ``total`` tokens holds in tokens_reserved: the next
    multiple of RESERVE_STEP above the total, but no more than 2^63 - 1 unless the total itself
    is (then the bigint cast fails and the write is refused). Below that cap it depends only on
    floor(total / RESERVE_STEP), which save_message tests cheaply. ``total`` is fixed SQL."""
    step = RESERVE_STEP
    return f"least((floor({total} / {step}) + 1) * {step}, greatest({total}, {MAX_BIGINT}))"


def _n(count: int, start: int = 1) -> str:
    """``$1, $2, …`` for a fixed column count (never for input-sized lists)."""
    return ", ".join(f"${i}" for i in range(start, start + count))


# FROM bots b {_BOT_TOTALS} makes these columns available, in BOTS order.
_BOT_SELECT = bot_columns(
    "b.total_tokens_used + coalesce(t.tokens, 0)", "greatest(b.last_active_at, t.last_active)"
)
_BOT_TOTALS = (
    "LEFT JOIN LATERAL (SELECT sum(s.total_input_tokens + s.total_output_tokens)::bigint AS tokens,"
    " max(s.last_activity_at) AS last_active FROM chat_sessions s WHERE s.bot_id = b.id) t ON true"
)

# Cheap test, in bigint, of whether the session's reservation changes with this message: its
# total crossed a step, or passed 2^63 - 1 (then the reservation update fails the statement).
_CROSSED = (
    f"{_reserve_steps('total_input_tokens', 'total_output_tokens')}"
    f" <> {_reserve_steps('(total_input_tokens - $12)', '(total_output_tokens - $13)')}"
    f" OR total_input_tokens > {MAX_BIGINT} - total_output_tokens"
)
_TOTAL_AFTER = "(s.tokens_in::numeric + s.tokens_out)"
_TOTAL_BEFORE = "(s.tokens_in::numeric + s.tokens_out - $12 - $13)"
# save_message in one statement, so one round trip and one implicit transaction. Updating the
# session row first locks it: concurrent writers to one session (any process) queue there and
# each re-reads the committed counter, so seq is gap-free and totals never lose an increment.
# Only when this message takes its session across a RESERVE_STEP is the bot's tokens_reserved
# raised; if that overflows bigint the whole statement fails, so the bot's total can never pass
# 2^63 - 1.
_BUMP_SESSION = (
    "UPDATE chat_sessions SET message_count = message_count + 1,"
    " total_input_tokens = total_input_tokens + $12,"
    " total_output_tokens = total_output_tokens + $13, last_activity_at = $5 WHERE id = $2"
)
_INSERT_MESSAGE = (
    "INSERT INTO chat_messages (id, session_id, bot_id, seq, role, content, created_at,"
    " input_tokens, output_tokens, model, stop_reason, response_ms, metadata)"
    " SELECT $1, $2, s.bot_id, s.message_count, $3, $4, $5, $6, $7, $8, $9, $10, $11 FROM s"
    " RETURNING seq"
)
SAVE_MESSAGE = (
    f"WITH s AS ({_BUMP_SESSION}"
    "  RETURNING message_count, bot_id, total_input_tokens AS tokens_in,"
    f"   total_output_tokens AS tokens_out, {_CROSSED} AS crossed),"
    f" m AS ({_INSERT_MESSAGE}),"
    " b AS ("
    "  UPDATE bots SET tokens_reserved = (tokens_reserved"
    f"   + {_reserved(_TOTAL_AFTER)} - {_reserved(_TOTAL_BEFORE)})::bigint"
    "  FROM s WHERE s.crossed AND bots.id = s.bot_id)"
    " SELECT seq FROM m"
)
# save_message as it nearly always runs: SAVE_MESSAGE without the bot row, for a message that
# leaves its session within its current RESERVE_STEP, so its reservation and bot row stay as
# they are. Then SAVE_MESSAGE would update no bot either, and this does exactly what it does,
# with one table and its indexes fewer to open and lock. Otherwise (the message crosses a step,
# or the session is gone) it changes nothing and returns no row, and SAVE_MESSAGE runs. With
# the total t = in + out <= 2^63 - 1 (SAVE_MESSAGE keeps it there) and $12 + $13 < 2^63 (the
# model's check), the test below is "t and t + $12 + $13 have the same floor(/ RESERVE_STEP)",
# in bigint arithmetic that cannot overflow; then t + $12 + $13 < 2^63 too (the last step ends
# at 2^63), so nothing _CROSSED tests can hold.
SAVE_MESSAGE_WITHIN_STEP = (
    f"WITH s AS ({_BUMP_SESSION} AND $12::bigint + $13::bigint < {RESERVE_STEP}"
    f"  - (total_input_tokens % {RESERVE_STEP} + total_output_tokens % {RESERVE_STEP})"
    f"  % {RESERVE_STEP}"
    f"  RETURNING message_count, bot_id) {_INSERT_MESSAGE}"
)
# Count the session on its bot and insert it in one statement: no bot, no row. A new session
# holds its first token reservation step (_reserved of a zero total).
_SESSION_COLUMNS = len(SESSIONS.columns)
CREATE_SESSION = (
    "WITH b AS (UPDATE bots SET conversation_count = conversation_count + 1,"
    f" tokens_reserved = tokens_reserved + {RESERVE_STEP}"
    f" WHERE id = $2 AND tokens_reserved <= {MAX_BIGINT - RESERVE_STEP} RETURNING id)"
    f" INSERT INTO chat_sessions ({SESSIONS.cols()})"
    f" SELECT $1, b.id, {_n(_SESSION_COLUMNS - 2, start=3)} FROM b RETURNING id"
)
# The same under a key (the last parameter), counted only if inserted: another writer's insert of the key is
# waited for and, once committed, makes this one insert and count nothing (the caller then
# looks the key up again). Returns (the bot exists, the session was inserted).
CREATE_KEYED_SESSION = (
    f"WITH i AS (INSERT INTO chat_sessions ({SESSIONS.cols()}, session_key)"
    f"  SELECT $1, b.id, {_n(_SESSION_COLUMNS - 1, start=3)} FROM bots b WHERE b.id = $2"
    "  ON CONFLICT (bot_id, session_key) WHERE session_key IS NOT NULL DO NOTHING"
    "  RETURNING bot_id),"
    " u AS (UPDATE bots SET conversation_count = conversation_count + 1,"
    f"  tokens_reserved = tokens_reserved + {RESERVE_STEP} FROM i WHERE bots.id = i.bot_id)"
    " SELECT EXISTS (SELECT 1 FROM bots WHERE id = $2), EXISTS (SELECT 1 FROM i)"
)


#: pg_advisory_xact_lock key held while migrating ("boternit" in ASCII); advisory locks are
#: per database, so this only serialises openers of the same database.
MIGRATION_LOCK = 0x626F7465726E6974


class PostgresStatements(Statements):
    id_list = "unnest(?::uuid[]) AS ids(value)"
    ledger_exists = "SELECT to_regclass('schema_migrations') IS NOT NULL"
    create_ledger = (
        "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY,"
        " name text NOT NULL, checksum text NOT NULL, applied_at timestamptz NOT NULL)"
    )
    lock_migrations = f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"
    # A new bot reserves exactly what it has used ($10, total_tokens_used).
    insert_bot = f"INSERT INTO bots ({BOTS.cols()}, tokens_reserved) VALUES ({_n(14)}, $10)"
    get_bot = f"SELECT {_BOT_SELECT} FROM bots b {_BOT_TOTALS} WHERE b.id = $1"
    get_bot_by_slug = f"SELECT {_BOT_SELECT} FROM bots b {_BOT_TOTALS} WHERE b.slug = $1"
    list_bots = (
        f"SELECT {_BOT_SELECT} FROM bots b {_BOT_TOTALS}"
        " WHERE b.status = coalesce($1, b.status) AND b.category = coalesce($2, b.category)"
        " ORDER BY b.created_at DESC, b.id DESC LIMIT $3 OFFSET $4"
    )
    update_bot = (
        "WITH b AS (UPDATE bots SET name = $1, slug = $2, description = $3, status = $4,"
        "  category = $5, tags = $6, user_id = $7, updated_at = $8 WHERE id = $9 RETURNING *)"
        f" SELECT {_BOT_SELECT} FROM b {_BOT_TOTALS}"
    )
    # A deleted session's tokens and activity are folded into its bot's own columns, so the
    # bot's totals (summed over live sessions when read) never go down; its unused reservation
    # is freed.
    delete_session = (
        "WITH s AS (DELETE FROM chat_sessions WHERE id = $1"
        "  RETURNING bot_id, total_input_tokens::numeric + total_output_tokens AS tokens,"
        "   last_activity_at)"
        " UPDATE bots b SET total_tokens_used = b.total_tokens_used + s.tokens,"
        f"  tokens_reserved = b.tokens_reserved - ({_reserved('s.tokens')} - s.tokens)::bigint,"
        "  last_active_at = greatest(b.last_active_at, s.last_activity_at)"
        " FROM s WHERE b.id = s.bot_id"
    )
    get_memories = visible_memories(limit_branches=True)
    # Row locks: a memory being superseded or restored is not changed by another writer.
    superseded_by = Statements.superseded_by + " FOR UPDATE"
    lock_memory = Statements.lock_memory + " FOR UPDATE"
    # The query is built from plain words joined by "or" (see search_terms), so
    # websearch_to_tsquery can never see an operator from the user. boternity_fold (migration
    # 0003) folds diacritics as SQLite's tokenizer does, on both sides.
    search = (
        f"SELECT {MEMORIES.cols('m.')}"
        " FROM session_memories m, websearch_to_tsquery('english', boternity_fold($2)) q"
        " WHERE m.bot_id = $1 AND m.fact_tsv @@ q AND ($3 OR m.superseded_by IS NULL)"
        f" AND ($5 OR {visible_to('$6', 'm.')})"
        " ORDER BY ts_rank(m.fact_tsv, q) DESC, m.importance DESC, m.created_at DESC, m.id DESC"
        " LIMIT $4"
    )
    # As search, on content_tsv (migration 0005): the best hits first, then ts_headline for
    # those only. The headline is of the folded text, so it marks "Zoë" for "zoe" (core.search
    # reads the marked words back).
    search_messages = (
        "WITH q AS (SELECT websearch_to_tsquery('english', boternity_fold(?1)) AS q),"
        " hits AS ("
        "  SELECT m.id, s.bot_id, s.user_id, ts_rank(m.content_tsv, q.q, 1) AS rank,"
        "  m.created_at"
        "  FROM q, chat_messages m JOIN chat_sessions s ON s.id = m.session_id"
        f"  WHERE m.content_tsv @@ q.q AND {message_filters()}"
        "  ORDER BY rank DESC, m.created_at DESC, m.id DESC LIMIT ?2)"
        " SELECT m.id, m.session_id, m.seq, m.role, m.created_at, char_length(m.content),"
        f"  left(m.content, {READ_CHARS}), hits.bot_id, hits.user_id,"
        # The message's own marker characters are spaces here (they separate words anyway),
        # so every one left in the headline is a mark.
        "  ts_headline('english', translate(boternity_fold("
        f"left(m.content, {SEARCHED_CHARS})), '{MARK_OPEN}{MARK_CLOSE}', '  '), q.q,"
        f"   'HighlightAll=true, StartSel={MARK_OPEN}, StopSel={MARK_CLOSE}')"
        " FROM q, hits JOIN chat_messages m ON m.id = hits.id"
        " ORDER BY hits.rank DESC, hits.created_at DESC, hits.id DESC"
    )
    # SKIP LOCKED: a job another claimer is taking right now is passed over, not waited for;
    # one it already took is no longer due when re-checked, so two claimers never share a job.
    claim = (
        "WITH due AS ("
        "  SELECT id FROM pending_memory_extractions"
        "  WHERE next_attempt_at <= $1 AND attempt_count < $3 AND bot_id = coalesce($4, bot_id)"
        f"  ORDER BY {PENDING_ORDER} LIMIT $5 FOR UPDATE SKIP LOCKED)"
        " UPDATE pending_memory_extractions p"
        " SET attempt_count = p.attempt_count + 1, last_attempt_at = $1, next_attempt_at = $2"
        f" FROM due WHERE p.id = due.id RETURNING {PENDING.cols('p.')}"
    )
    # Transaction-scoped, in the two-int key space (apart from the bigint keys of session and
    # migration locks): first int "mem" in ASCII, second 32 bits of the bot id's md5.
    lock_bot = "SELECT pg_advisory_xact_lock(7169389, ('x' || left(md5($1::uuid::text), 8))::bit(32)::int4)"
    # The popped message and the summaries that cover it, in one statement.
    pop_message = (
        "WITH m AS (DELETE FROM chat_messages WHERE session_id = $1 AND seq = $2"
        f"  RETURNING {MESSAGES.cols()}),"
        " c AS (DELETE FROM context_summaries WHERE session_id = $1 AND messages_end >= $2)"
        f" SELECT {MESSAGES.cols()} FROM m"
    )
    pop_summaries = ""
    # context_summaries also has bot_id (for distribution by bot), taken from the session.
    insert_summary = (
        f"INSERT INTO context_summaries ({SUMMARIES.cols()}, bot_id)"
        f" SELECT {_n(7)}, bot_id FROM chat_sessions WHERE id = $2 AND message_count >= $5"
        " RETURNING id"
    )


POSTGRES = Dialect(
    name="postgresql",
    sql=PostgresStatements().numbered(),
    to_db={},
    from_db={},
    search_text=lambda terms, every: (" " if every else " or ").join(terms),
    no_limit=None,
    # No arguments: the simple query protocol runs the whole file as one step.
    script=lambda sql: [sql],
)


class PostgresChat(ChatCore):
    """Two units replaced by one statement each (one round trip, no explicit transaction):
    save_message (the hot path, and the bot-totals-at-read design; a second statement only
    for a message that takes its session across a token reservation step) and
    create_session."""

    _fused = True

    def _create_session(self, params: list[Any], key: str | None, bot: uuid.UUID) -> Unit[bool]:
        if key is None:
            if (yield CREATE_SESSION, params, VALUE) is None:
                raise (yield from self._not_counted(params[1], bot))
            return True
        bot_found, inserted = yield CREATE_KEYED_SESSION, [*params, key], ONE
        if not bot_found:
            raise missing("bot", bot)
        return bool(inserted)

    def _save_message(
        self, m: ChatMessage, params: list[Any], tokens: tuple[int, int]
    ) -> Unit[int]:
        bound = [*params[:2], *params[3:], *tokens]  # seq is assigned in the statement
        seq: int | None = yield SAVE_MESSAGE_WITHIN_STEP, bound, VALUE
        if seq is None:  # a step crossed, or no such session: the whole statement decides
            seq = yield SAVE_MESSAGE, bound, VALUE
            if seq is None:
                raise missing("chat session", m.session_id)
        return seq
