"""One row -> object function per type, and the column lists they read.

SQLite stores ids as lowercase hyphenated UUID text and times as fixed-width ISO 8601 UTC
text with microseconds, so text order is time order.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from boternity.models import (
    Bot,
    ChatMessage,
    ChatSession,
    ContextSummary,
    MemoryEntry,
    MemoryEvent,
    MessageRole,
    PendingExtraction,
    SoulVersion,
    trusted_loader,
)

Row = tuple[Any, ...]

_UUID = uuid.UUID
_fromiso = datetime.fromisoformat


def ts(value: datetime) -> str:
    """Models hold UTC datetimes, so isoformat always ends in +00:00 and is fixed width."""
    return value.isoformat(timespec="microseconds")


def opt_ts(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="microseconds")


def uid(value: uuid.UUID) -> str:
    return str(value)


def opt_uid(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)


def _opt_time(value: str | None) -> datetime | None:
    return None if value is None else _fromiso(value)


def _opt_uuid(value: str | None) -> uuid.UUID | None:
    return None if value is None else _UUID(value)


BOT_COLUMNS = (
    "id, slug, name, description, status, category, tags, user_id, conversation_count, "
    "total_tokens_used, version_count, created_at, updated_at, last_active_at"
)


def bot_params(b: Bot) -> tuple[Any, ...]:
    return (
        uid(b.id), b.slug, b.name, b.description, b.status.value, b.category.value,
        json.dumps(b.tags, ensure_ascii=False), b.user_id, b.conversation_count,
        b.total_tokens_used, b.version_count, ts(b.created_at), ts(b.updated_at),
        opt_ts(b.last_active_at),
    )  # fmt: skip


def bot(r: Row) -> Bot:
    return Bot(
        id=_UUID(r[0]), slug=r[1], name=r[2], description=r[3], status=r[4], category=r[5],
        tags=json.loads(r[6]), user_id=r[7], conversation_count=r[8], total_tokens_used=r[9],
        version_count=r[10], created_at=_fromiso(r[11]), updated_at=_fromiso(r[12]),
        last_active_at=_opt_time(r[13]),
    )  # fmt: skip


SOUL_COLUMNS = "id, bot_id, content, hash, version, message, created_at"


def soul(r: Row) -> SoulVersion:
    return SoulVersion(
        id=_UUID(r[0]), bot_id=_UUID(r[1]), content=r[2], hash=r[3], version=r[4],
        message=r[5], created_at=_fromiso(r[6]),
    )  # fmt: skip


SESSION_COLUMNS = (
    "id, bot_id, title, started_at, ended_at, total_input_tokens, total_output_tokens, "
    "message_count, model, status, last_activity_at"
)


def session_params(s: ChatSession) -> tuple[Any, ...]:
    return (
        uid(s.id), uid(s.bot_id), s.title, ts(s.started_at), opt_ts(s.ended_at),
        s.total_input_tokens, s.total_output_tokens, s.message_count, s.model, s.status.value,
        opt_ts(s.last_activity_at),
    )  # fmt: skip


def session(r: Row) -> ChatSession:
    return ChatSession(
        id=_UUID(r[0]), bot_id=_UUID(r[1]), title=r[2], started_at=_fromiso(r[3]),
        ended_at=_opt_time(r[4]), total_input_tokens=r[5], total_output_tokens=r[6],
        message_count=r[7], model=r[8], status=r[9], last_activity_at=_opt_time(r[10]),
    )  # fmt: skip


MESSAGE_COLUMNS = (
    "id, session_id, seq, role, content, created_at, input_tokens, output_tokens, model, "
    "stop_reason, response_ms, metadata"
)


_load_message = trusted_loader(ChatMessage)
_ROLE = MessageRole._value2member_map_


def message(r: Row, session_id: uuid.UUID | None = None) -> ChatMessage:
    """``session_id``: the parsed id when every row shares it (one parse per query)."""
    # field order: session_id, role, content, id, created_at, input_tokens, output_tokens,
    # model, stop_reason, response_ms, metadata, seq
    return _load_message(
        _UUID(r[1]) if session_id is None else session_id, _ROLE[r[3]], r[4], _UUID(r[0]),
        _fromiso(r[5]), r[6], r[7], r[8], r[9], r[10],
        None if r[11] is None else json.loads(r[11]), r[2],
    )  # fmt: skip


MEMORY_COLUMNS = (
    "id, bot_id, session_id, fact, category, importance, source_message_id, superseded_by, "
    "created_at, is_manual"
)


def memory_params(m: MemoryEntry) -> tuple[Any, ...]:
    return (
        uid(m.id), uid(m.bot_id), opt_uid(m.session_id), m.fact, m.category.value,
        m.importance, opt_uid(m.source_message_id), opt_uid(m.superseded_by), ts(m.created_at),
        int(m.is_manual),
    )  # fmt: skip


def memory(r: Row) -> MemoryEntry:
    return MemoryEntry(
        id=_UUID(r[0]), bot_id=_UUID(r[1]), session_id=_opt_uuid(r[2]), fact=r[3],
        category=r[4], importance=r[5], source_message_id=_opt_uuid(r[6]),
        superseded_by=_opt_uuid(r[7]), created_at=_fromiso(r[8]), is_manual=bool(r[9]),
    )  # fmt: skip


PENDING_COLUMNS = (
    "id, session_id, bot_id, attempt_count, last_attempt_at, next_attempt_at, error_message, "
    "messages_start, messages_end, created_at"
)


def pending_params(p: PendingExtraction) -> tuple[Any, ...]:
    return (
        uid(p.id), uid(p.session_id), uid(p.bot_id), p.attempt_count, opt_ts(p.last_attempt_at),
        ts(p.next_attempt_at), p.error_message, p.messages_start, p.messages_end,
        ts(p.created_at),
    )  # fmt: skip


def pending(r: Row) -> PendingExtraction:
    return PendingExtraction(
        id=_UUID(r[0]), session_id=_UUID(r[1]), bot_id=_UUID(r[2]), attempt_count=r[3],
        last_attempt_at=_opt_time(r[4]), next_attempt_at=_fromiso(r[5]), error_message=r[6],
        messages_start=r[7], messages_end=r[8], created_at=_fromiso(r[9]),
    )  # fmt: skip


SUMMARY_COLUMNS = "id, session_id, summary, messages_start, messages_end, token_count, created_at"


def summary(r: Row) -> ContextSummary:
    return ContextSummary(
        id=_UUID(r[0]), session_id=_UUID(r[1]), summary=r[2], messages_start=r[3],
        messages_end=r[4], token_count=r[5], created_at=_fromiso(r[6]),
    )  # fmt: skip


HISTORY_COLUMNS = "id, memory_id, bot_id, event, actor, fact, job_id, related_memory_id, created_at"


def history(r: Row) -> MemoryEvent:
    return MemoryEvent(
        id=_UUID(r[0]), memory_id=_UUID(r[1]), bot_id=_UUID(r[2]), event=r[3], actor=r[4],
        fact=r[5], job_id=_opt_uuid(r[6]), related_memory_id=_opt_uuid(r[7]),
        created_at=_fromiso(r[8]),
    )  # fmt: skip
