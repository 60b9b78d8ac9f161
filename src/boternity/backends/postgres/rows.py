"""One row -> object function per type, and the column lists they read.

Columns are native (uuid, timestamptz, bigint, text[], json), so values pass through asyncpg
unchanged except message metadata, which is stored as JSON text exactly as written.
"""

from __future__ import annotations

import json
from typing import Any

from boternity.models import (
    MAX_BIGINT,
    Bot,
    ChatMessage,
    ChatSession,
    ContextSummary,
    MemoryEntry,
    MemoryEvent,
    PendingExtraction,
    SoulVersion,
)

Row = Any  # asyncpg.Record: indexable by position

BOT_COLUMNS = (
    "id, slug, name, description, status, category, tags, user_id, conversation_count, "
    "total_tokens_used, version_count, created_at, updated_at, last_active_at"
)


# A bot's total_tokens_used and last_active_at columns hold what its deleted sessions
# contributed; the live sessions' share is added when read, so save_message does not lock the
# bot row (see tokens_reserved in the schema for how the total is still kept within bigint).
# FROM bots b {BOT_TOTALS} makes these columns available.
BOT_SELECT = (
    "b.id, b.slug, b.name, b.description, b.status, b.category, b.tags, b.user_id,"
    " b.conversation_count, b.total_tokens_used + coalesce(t.tokens, 0), b.version_count,"
    " b.created_at, b.updated_at, greatest(b.last_active_at, t.last_active)"
)
BOT_TOTALS = (
    "LEFT JOIN LATERAL (SELECT sum(s.total_input_tokens + s.total_output_tokens)::bigint AS tokens,"
    " max(s.last_activity_at) AS last_active FROM chat_sessions s WHERE s.bot_id = b.id) t ON true"
)


#: Tokens a session reserves on its bot at a time (see bots.tokens_reserved).
RESERVE_STEP = 2**24


def reserve_steps(tokens_in: str, tokens_out: str) -> str:
    """SQL for floor((in + out) / RESERVE_STEP) of two non-negative bigints, in bigint
    arithmetic that cannot overflow (their sum might)."""
    c = RESERVE_STEP
    return (
        f"({tokens_in} / {c} + {tokens_out} / {c} + ({tokens_in} % {c} + {tokens_out} % {c}) / {c})"
    )


def reserved(total: str) -> str:
    """SQL for what a session with numeric ``total`` tokens holds in tokens_reserved: the next
    multiple of RESERVE_STEP above the total, but no more than 2^63 - 1 unless the total itself
    is (then the bigint cast fails and the write is refused). Below that cap it depends only on
    floor(total / RESERVE_STEP), which save_message tests cheaply. ``total`` is fixed SQL."""
    step = RESERVE_STEP
    return f"least((floor({total} / {step}) + 1) * {step}, greatest({total}, {MAX_BIGINT}))"


def bot_params(b: Bot) -> tuple[Any, ...]:
    """BOT_COLUMNS, then tokens_reserved (a new bot reserves exactly what it has used)."""
    return (
        b.id, b.slug, b.name, b.description, b.status.value, b.category.value, b.tags,
        b.user_id, b.conversation_count, b.total_tokens_used, b.version_count, b.created_at,
        b.updated_at, b.last_active_at, b.total_tokens_used,
    )  # fmt: skip


def bot(r: Row) -> Bot:
    return Bot(
        id=r[0], slug=r[1], name=r[2], description=r[3], status=r[4], category=r[5],
        tags=list(r[6]), user_id=r[7], conversation_count=r[8], total_tokens_used=r[9],
        version_count=r[10], created_at=r[11], updated_at=r[12], last_active_at=r[13],
    )  # fmt: skip


SOUL_COLUMNS = "id, bot_id, content, hash, version, message, created_at"


def soul(r: Row) -> SoulVersion:
    return SoulVersion(
        id=r[0], bot_id=r[1], content=r[2], hash=r[3], version=r[4], message=r[5],
        created_at=r[6],
    )  # fmt: skip


SESSION_COLUMNS = (
    "id, bot_id, title, started_at, ended_at, total_input_tokens, total_output_tokens, "
    "message_count, model, status, last_activity_at"
)


def session_params(s: ChatSession) -> tuple[Any, ...]:
    return (
        s.id, s.bot_id, s.title, s.started_at, s.ended_at, s.total_input_tokens,
        s.total_output_tokens, s.message_count, s.model, s.status.value, s.last_activity_at,
    )  # fmt: skip


def session(r: Row) -> ChatSession:
    return ChatSession(
        id=r[0], bot_id=r[1], title=r[2], started_at=r[3], ended_at=r[4],
        total_input_tokens=r[5], total_output_tokens=r[6], message_count=r[7], model=r[8],
        status=r[9], last_activity_at=r[10],
    )  # fmt: skip


# chat_messages also has bot_id (for distribution by bot); the model does not carry it.
MESSAGE_COLUMNS = (
    "id, session_id, seq, role, content, created_at, input_tokens, output_tokens, model, "
    "stop_reason, response_ms, metadata"
)


def message(r: Row) -> ChatMessage:
    return ChatMessage(
        id=r[0], session_id=r[1], seq=r[2], role=r[3], content=r[4], created_at=r[5],
        input_tokens=r[6], output_tokens=r[7], model=r[8], stop_reason=r[9],
        response_ms=r[10], metadata=None if r[11] is None else json.loads(r[11]),
    )  # fmt: skip


MEMORY_COLUMNS = (
    "id, bot_id, session_id, fact, category, importance, source_message_id, superseded_by, "
    "created_at, is_manual"
)


def memory_params(m: MemoryEntry) -> tuple[Any, ...]:
    return (
        m.id, m.bot_id, m.session_id, m.fact, m.category.value, m.importance,
        m.source_message_id, m.superseded_by, m.created_at, m.is_manual,
    )  # fmt: skip


def memory(r: Row) -> MemoryEntry:
    return MemoryEntry(
        id=r[0], bot_id=r[1], session_id=r[2], fact=r[3], category=r[4], importance=r[5],
        source_message_id=r[6], superseded_by=r[7], created_at=r[8], is_manual=r[9],
    )  # fmt: skip


PENDING_COLUMNS = (
    "id, session_id, bot_id, attempt_count, last_attempt_at, next_attempt_at, error_message, "
    "messages_start, messages_end, created_at"
)


def pending_params(p: PendingExtraction) -> tuple[Any, ...]:
    return (
        p.id, p.session_id, p.bot_id, p.attempt_count, p.last_attempt_at, p.next_attempt_at,
        p.error_message, p.messages_start, p.messages_end, p.created_at,
    )  # fmt: skip


def pending(r: Row) -> PendingExtraction:
    return PendingExtraction(
        id=r[0], session_id=r[1], bot_id=r[2], attempt_count=r[3], last_attempt_at=r[4],
        next_attempt_at=r[5], error_message=r[6], messages_start=r[7], messages_end=r[8],
        created_at=r[9],
    )  # fmt: skip


SUMMARY_COLUMNS = "id, session_id, summary, messages_start, messages_end, token_count, created_at"


def summary(r: Row) -> ContextSummary:
    return ContextSummary(
        id=r[0], session_id=r[1], summary=r[2], messages_start=r[3], messages_end=r[4],
        token_count=r[5], created_at=r[6],
    )  # fmt: skip


HISTORY_COLUMNS = "id, memory_id, bot_id, event, actor, fact, job_id, related_memory_id, created_at"


def history(r: Row) -> MemoryEvent:
    return MemoryEvent(
        id=r[0], memory_id=r[1], bot_id=r[2], event=r[3], actor=r[4], fact=r[5], job_id=r[6],
        related_memory_id=r[7], created_at=r[8],
    )  # fmt: skip


def placeholders(count: int, start: int = 1) -> str:
    """``$1, $2, …`` for a fixed column count (never for input-sized lists)."""
    return ", ".join(f"${i}" for i in range(start, start + count))
