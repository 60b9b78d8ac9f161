"""The PostgreSQL dialect: its SQL, and the two units it runs as one statement.

Columns are native (uuid, timestamptz, bigint, text[], boolean), so values pass through
asyncpg unchanged; message metadata is JSON text, as on every backend.

A bot's total_tokens_used and last_active_at columns hold what its deleted sessions
contributed; the live sessions' share is added when read (BOT_SELECT), so save_message does
not lock the bot row: sessions of one bot do not queue on one row lock held through every
commit's WAL flush. See tokens_reserved in the schema for how the total still stays within
bigint.
"""

from __future__ import annotations

import uuid
from typing import Any

from boternity.backends.core.chat import ChatCore
from boternity.backends.core.dialect import VALUE, Dialect, Statements, Unit, missing
from boternity.backends.core.tables import (
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
from boternity.models import ChatMessage

#: Tokens a session reserves on its bot at a time (see bots.tokens_reserved).
RESERVE_STEP = 2**24
_MAX = 2**63 - 1


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
    return f"least((floor({total} / {step}) + 1) * {step}, greatest({total}, {_MAX}))"


def _n(count: int, start: int = 1) -> str:
    """``$1, $2, …`` for a fixed column count (never for input-sized lists)."""
    return ", ".join(f"${i}" for i in range(start, start + count))


def _select(t: Table[Any], where: str, order: str = "") -> str:
    return f"SELECT {t.cols()} FROM {t.name} WHERE {where}{order and ' ORDER BY ' + order}"


# FROM bots b {_BOT_TOTALS} makes these columns available, in BOTS order.
_BOT_SELECT = (
    BOTS.cols("b.")
    .replace("b.total_tokens_used", "b.total_tokens_used + coalesce(t.tokens, 0)")
    .replace("b.last_active_at", "greatest(b.last_active_at, t.last_active)")
)
_BOT_TOTALS = (
    "LEFT JOIN LATERAL (SELECT sum(s.total_input_tokens + s.total_output_tokens)::bigint AS tokens,"
    " max(s.last_activity_at) AS last_active FROM chat_sessions s WHERE s.bot_id = b.id) t ON true"
)
_SESSION_ORDER = "started_at DESC, id DESC"
_PENDING_ORDER = "next_attempt_at ASC, id ASC"
_UNUSED = ""  # a statement only a unit this dialect replaces would run

# Cheap test, in bigint, of whether the session's reservation changes with this message: its
# total crossed a step, or passed 2^63 - 1 (then the reservation update fails the statement).
_CROSSED = (
    f"{_reserve_steps('total_input_tokens', 'total_output_tokens')}"
    f" <> {_reserve_steps('(total_input_tokens - $12)', '(total_output_tokens - $13)')}"
    f" OR total_input_tokens > {_MAX} - total_output_tokens"
)
_TOTAL_AFTER = "(s.tokens_in::numeric + s.tokens_out)"
_TOTAL_BEFORE = "(s.tokens_in::numeric + s.tokens_out - $12 - $13)"
# save_message in one statement, so one round trip and one implicit transaction. Updating the
# session row first locks it: concurrent writers to one session (any process) queue there and
# each re-reads the committed counter, so seq is gap-free and totals never lose an increment.
# Only when this message takes its session across a RESERVE_STEP is the bot's tokens_reserved
# raised; if that overflows bigint the whole statement fails, so the bot's total can never pass
# 2^63 - 1.
SAVE_MESSAGE = (
    "WITH s AS ("
    "  UPDATE chat_sessions SET message_count = message_count + 1,"
    "   total_input_tokens = total_input_tokens + $12,"
    "   total_output_tokens = total_output_tokens + $13, last_activity_at = $5"
    "  WHERE id = $2"
    "  RETURNING message_count, bot_id, total_input_tokens AS tokens_in,"
    f"   total_output_tokens AS tokens_out, {_CROSSED} AS crossed),"
    " m AS ("
    "  INSERT INTO chat_messages (id, session_id, bot_id, seq, role, content, created_at,"
    "   input_tokens, output_tokens, model, stop_reason, response_ms, metadata)"
    "  SELECT $1, $2, s.bot_id, s.message_count, $3, $4, $5, $6, $7, $8, $9, $10, $11 FROM s"
    "  RETURNING seq),"
    " b AS ("
    "  UPDATE bots SET tokens_reserved = (tokens_reserved"
    f"   + {_reserved(_TOTAL_AFTER)} - {_reserved(_TOTAL_BEFORE)})::bigint"
    "  FROM s WHERE s.crossed AND bots.id = s.bot_id)"
    " SELECT seq FROM m"
)
# Count the session on its bot and insert it in one statement: no bot, no row. A new session
# holds its first token reservation step (_reserved of a zero total).
CREATE_SESSION = (
    "WITH b AS (UPDATE bots SET conversation_count = conversation_count + 1,"
    f" tokens_reserved = tokens_reserved + {RESERVE_STEP} WHERE id = $2 RETURNING id)"
    f" INSERT INTO chat_sessions ({SESSIONS.cols()}) SELECT $1, b.id, {_n(9, start=3)} FROM b"
    " RETURNING id"
)

SQL = Statements(
    # A new bot reserves exactly what it has used ($10, total_tokens_used).
    insert_bot=f"INSERT INTO bots ({BOTS.cols()}, tokens_reserved) VALUES ({_n(14)}, $10)",
    get_bot=f"SELECT {_BOT_SELECT} FROM bots b {_BOT_TOTALS} WHERE b.id = $1",
    get_bot_by_slug=f"SELECT {_BOT_SELECT} FROM bots b {_BOT_TOTALS} WHERE b.slug = $1",
    list_bots=(
        f"SELECT {_BOT_SELECT} FROM bots b {_BOT_TOTALS}"
        " WHERE ($1::text IS NULL OR b.status = $1) AND ($2::text IS NULL OR b.category = $2)"
        " ORDER BY b.created_at DESC, b.id DESC LIMIT $3 OFFSET $4"
    ),
    update_bot=(
        "WITH b AS (UPDATE bots SET name = $1, slug = $2, description = $3, status = $4,"
        "  category = $5, tags = $6, user_id = $7, updated_at = $8 WHERE id = $9 RETURNING *)"
        f" SELECT {_BOT_SELECT} FROM b {_BOT_TOTALS}"
    ),
    delete_bot="DELETE FROM bots WHERE id = $1",
    bump_soul_count=(
        "UPDATE bots SET version_count = version_count + 1, updated_at = $2 WHERE id = $1"
        " RETURNING id"
    ),
    insert_soul=(
        f"INSERT INTO soul_versions ({SOULS.cols()})"
        " SELECT $1, $2, $3, $4, coalesce(max(version), 0) + 1, $5, $6"
        " FROM soul_versions WHERE bot_id = $2 RETURNING version"
    ),
    get_soul=_select(SOULS, "bot_id = $1 AND version = $2"),
    latest_soul=_select(SOULS, "bot_id = $1", "version DESC LIMIT 1"),
    list_souls=_select(SOULS, "bot_id = $1", "version ASC, id ASC"),
    count_conversation=_UNUSED,
    insert_session=_UNUSED,
    get_session=_select(SESSIONS, "id = $1"),
    update_session=(
        "UPDATE chat_sessions SET title = $1, status = $2, ended_at = $3 WHERE id = $4"
        f" RETURNING {SESSIONS.cols()}"
    ),
    list_sessions=_select(SESSIONS, "bot_id = $1", f"{_SESSION_ORDER} LIMIT $2 OFFSET $3"),
    active_sessions=_select(SESSIONS, "bot_id = $1 AND status = 'active'", _SESSION_ORDER),
    # A deleted session's tokens and activity are folded into its bot's own columns, so the
    # bot's totals (summed over live sessions when read) never go down; its unused reservation
    # is freed.
    delete_session=(
        "WITH s AS (DELETE FROM chat_sessions WHERE id = $1"
        "  RETURNING bot_id, total_input_tokens::numeric + total_output_tokens AS tokens,"
        "   last_activity_at)"
        " UPDATE bots b SET total_tokens_used = b.total_tokens_used + s.tokens,"
        f"  tokens_reserved = b.tokens_reserved - ({_reserved('s.tokens')} - s.tokens)::bigint,"
        "  last_active_at = greatest(b.last_active_at, s.last_activity_at)"
        " FROM s WHERE b.id = s.bot_id"
    ),
    bump_session=_UNUSED,
    insert_message=_UNUSED,
    bump_bot_tokens=_UNUSED,
    get_message=_select(MESSAGES, "id = $1"),
    get_messages=_select(MESSAGES, "session_id = $1", "seq ASC LIMIT $2 OFFSET $3"),
    recent_messages=_select(MESSAGES, "session_id = $1", "seq DESC LIMIT $2"),
    message_count="SELECT message_count FROM chat_sessions WHERE id = $1",
    reset_message_count="UPDATE chat_sessions SET message_count = 0 WHERE id = $1 RETURNING id",
    clear_messages="DELETE FROM chat_messages WHERE session_id = $1",
    clear_summaries="DELETE FROM context_summaries WHERE session_id = $1",
    clear_pending="DELETE FROM pending_memory_extractions WHERE session_id = $1",
    count_sessions="SELECT count(*) FROM chat_sessions",
    count_messages="SELECT count(*) FROM chat_messages",
    memory_refs=(
        "SELECT EXISTS (SELECT 1 FROM bots WHERE id = $1),"
        " (SELECT bot_id FROM chat_sessions WHERE id = $2),"
        " (SELECT session_id FROM chat_messages WHERE id = $3),"
        " (SELECT bot_id FROM chat_messages WHERE id = $3),"
        " (SELECT bot_id FROM session_memories WHERE id = $4),"
        " EXISTS (SELECT 1 FROM session_memories WHERE id = $5)"
    ),
    insert_memory=f"INSERT INTO session_memories ({MEMORIES.cols()}) VALUES ({_n(10)})",
    insert_history=f"INSERT INTO memory_history ({HISTORY.cols()}) VALUES ({_n(9)})",
    get_memory=_select(MEMORIES, "id = $1"),
    get_memories=_select(
        MEMORIES,
        "bot_id = $1 AND ($2 OR superseded_by IS NULL)",
        "importance DESC, created_at DESC, id DESC LIMIT $3",
    ),  # fmt: skip
    memories_by_session=_select(MEMORIES, "session_id = $1", "created_at ASC, id ASC"),
    superseded_by="SELECT id, fact FROM session_memories WHERE superseded_by = $1 FOR UPDATE",
    delete_memory="DELETE FROM session_memories WHERE id = $1 RETURNING bot_id, fact",
    delete_all_memories="DELETE FROM session_memories WHERE bot_id = $1 RETURNING id, fact",
    # The query is built from plain words joined by "or" (see search_terms), so
    # websearch_to_tsquery can never see an operator from the user.
    search=(
        f"SELECT {MEMORIES.cols('m.')}"
        " FROM session_memories m, websearch_to_tsquery('english', $2) q"
        " WHERE m.bot_id = $1 AND m.fact_tsv @@ q AND ($3 OR m.superseded_by IS NULL)"
        " ORDER BY ts_rank(m.fact_tsv, q) DESC, m.importance DESC, m.created_at DESC, m.id DESC"
        " LIMIT $4"
    ),
    history=_select(HISTORY, "memory_id = $1", "created_at ASC, id ASC"),
    # Locks the old memory, so two supersedes of one memory cannot both succeed.
    lock_memory="SELECT bot_id, superseded_by, fact FROM session_memories WHERE id = $1 FOR UPDATE",
    supersede="UPDATE session_memories SET superseded_by = $1 WHERE id = $2",
    insert_pending=(
        f"INSERT INTO pending_memory_extractions ({PENDING.cols()})"
        f" SELECT {_n(10)} FROM chat_sessions WHERE id = $2 AND bot_id = $3 RETURNING id"
    ),
    session_bot="SELECT bot_id FROM chat_sessions WHERE id = $1",
    pending_for_bot=_select(PENDING, "bot_id = $1 AND attempt_count < $2", _PENDING_ORDER),
    all_pending=_select(PENDING, "$1::uuid IS NULL OR bot_id = $1", _PENDING_ORDER),
    get_pending=_select(PENDING, "id = $1"),
    delete_pending="DELETE FROM pending_memory_extractions WHERE id = $1",
    update_pending=(
        "UPDATE pending_memory_extractions SET attempt_count = $1, last_attempt_at = $2,"
        f" next_attempt_at = $3, error_message = $4 WHERE id = $5 RETURNING {PENDING.cols()}"
    ),
    # SKIP LOCKED: a job another claimer is taking right now is passed over, not waited for;
    # one it already took is no longer due when re-checked, so two claimers never share a job.
    claim=(
        "WITH due AS ("
        "  SELECT id FROM pending_memory_extractions"
        "  WHERE next_attempt_at <= $1 AND attempt_count < $3 AND ($4::uuid IS NULL OR bot_id = $4)"
        f"  ORDER BY {_PENDING_ORDER} LIMIT $5 FOR UPDATE SKIP LOCKED)"
        " UPDATE pending_memory_extractions p"
        " SET attempt_count = p.attempt_count + 1, last_attempt_at = $1, next_attempt_at = $2"
        f" FROM due WHERE p.id = due.id RETURNING {PENDING.cols('p.')}"
    ),
    insert_summary=(
        f"INSERT INTO context_summaries ({SUMMARIES.cols()}, bot_id)"
        f" SELECT {_n(7)}, bot_id FROM chat_sessions WHERE id = $2 AND message_count >= $5"
        " RETURNING id"
    ),
    latest_summary=_select(
        SUMMARIES, "session_id = $1", "messages_end DESC, created_at DESC, id DESC LIMIT 1"
    ),
    list_summaries=_select(
        SUMMARIES, "session_id = $1", "messages_end ASC, created_at ASC, id ASC"
    ),
)

POSTGRES = Dialect(
    name="postgresql",
    sql=SQL,
    to_db={},
    from_db={},
    search_text=" or ".join,
)


class PostgresChat(ChatCore):
    """Two units replaced by one statement each (one round trip, no explicit transaction):
    save_message (the hot path, and the bot-totals-at-read design) and create_session."""

    _fused = True

    def _create_session(self, params: list[Any], bot_id: uuid.UUID) -> Unit[None]:
        if (yield CREATE_SESSION, params, VALUE) is None:
            raise missing("bot", bot_id)

    def _save_message(self, m: ChatMessage, params: list[Any]) -> Unit[int]:
        # seq is assigned in the statement; the token counts are bound as 0 when None.
        bound = [*params[:2], *params[3:], m.input_tokens or 0, m.output_tokens or 0]
        seq: int | None = yield SAVE_MESSAGE, bound, VALUE
        if seq is None:
            raise missing("chat session", m.session_id)
        return seq
