"""The SQLite dialect: its SQL, and how it stores values.

Ids are lowercase hyphenated UUID text; times are fixed-width ISO 8601 UTC text with
microseconds, so text order is time order; tags are JSON text; flags are 0/1.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from boternity.backends.core.dialect import Dialect, Statements
from boternity.backends.core.tables import (
    BOTS,
    FLAG,
    HISTORY,
    MEMORIES,
    MESSAGES,
    PENDING,
    SESSIONS,
    SOULS,
    SUMMARIES,
    TAGS,
    TIME,
    UUID,
    Table,
)


def ts(value: datetime) -> str:
    """Models hold UTC datetimes, so isoformat always ends in +00:00 and is fixed width."""
    return value.isoformat(timespec="microseconds")


def _insert(t: Table[Any]) -> str:
    return f"INSERT INTO {t.name} ({t.cols()}) VALUES ({', '.join('?' * len(t.columns))})"


def _select(t: Table[Any], where: str, order: str = "") -> str:
    return f"SELECT {t.cols()} FROM {t.name} WHERE {where}{order and ' ORDER BY ' + order}"


_SESSION_ORDER = "started_at DESC, id DESC"
_MEMORY_ORDER = "importance DESC, created_at DESC, id DESC"
_PENDING_ORDER = "next_attempt_at ASC, id ASC"

SQL = Statements(
    insert_bot=_insert(BOTS),
    get_bot=_select(BOTS, "id = ?"),
    get_bot_by_slug=_select(BOTS, "slug = ?"),
    list_bots=_select(
        BOTS,
        "(?1 IS NULL OR status = ?1) AND (?2 IS NULL OR category = ?2)",
        "created_at DESC, id DESC LIMIT coalesce(?3, -1) OFFSET ?4",
    ),  # fmt: skip
    update_bot=(
        "UPDATE bots SET name = ?, slug = ?, description = ?, status = ?, category = ?,"
        f" tags = ?, user_id = ?, updated_at = ? WHERE id = ? RETURNING {BOTS.cols()}"
    ),
    delete_bot="DELETE FROM bots WHERE id = ?",
    bump_soul_count=(
        "UPDATE bots SET version_count = version_count + 1, updated_at = ?2 WHERE id = ?1"
        " RETURNING id"
    ),
    insert_soul=(
        f"INSERT INTO soul_versions ({SOULS.cols()})"
        " SELECT ?1, ?2, ?3, ?4, coalesce(max(version), 0) + 1, ?5, ?6"
        " FROM soul_versions WHERE bot_id = ?2 RETURNING version"
    ),
    get_soul=_select(SOULS, "bot_id = ? AND version = ?"),
    latest_soul=_select(SOULS, "bot_id = ?", "version DESC LIMIT 1"),
    list_souls=_select(SOULS, "bot_id = ?", "version ASC, id ASC"),
    count_conversation="UPDATE bots SET conversation_count = conversation_count + 1 WHERE id = ?",
    insert_session=_insert(SESSIONS),
    get_session=_select(SESSIONS, "id = ?"),
    update_session=(
        "UPDATE chat_sessions SET title = ?, status = ?, ended_at = ? WHERE id = ?"
        f" RETURNING {SESSIONS.cols()}"
    ),
    list_sessions=_select(
        SESSIONS, "bot_id = ?", f"{_SESSION_ORDER} LIMIT coalesce(?, -1) OFFSET ?"
    ),
    active_sessions=_select(SESSIONS, "bot_id = ? AND status = 'active'", _SESSION_ORDER),
    delete_session="DELETE FROM chat_sessions WHERE id = ?",
    bump_session=(
        "UPDATE chat_sessions SET message_count = message_count + 1,"
        " total_input_tokens = total_input_tokens + ?,"
        " total_output_tokens = total_output_tokens + ?, last_activity_at = ? WHERE id = ?"
        " RETURNING message_count, bot_id,"
        # SQLite turns an overflowing integer sum into a REAL; such a row could never be read.
        " typeof(total_input_tokens) = 'integer' AND typeof(total_output_tokens) = 'integer'"
    ),
    insert_message=_insert(MESSAGES),
    bump_bot_tokens=(
        "UPDATE bots SET total_tokens_used = total_tokens_used + ?, last_active_at = ?"
        " WHERE id = ? RETURNING typeof(total_tokens_used) = 'integer'"
    ),
    get_message=_select(MESSAGES, "id = ?"),
    get_messages=_select(MESSAGES, "session_id = ?", "seq ASC LIMIT coalesce(?, -1) OFFSET ?"),
    recent_messages=_select(MESSAGES, "session_id = ?", "seq DESC LIMIT ?"),
    message_count="SELECT message_count FROM chat_sessions WHERE id = ?",
    reset_message_count="UPDATE chat_sessions SET message_count = 0 WHERE id = ? RETURNING id",
    clear_messages="DELETE FROM chat_messages WHERE session_id = ?",
    clear_summaries="DELETE FROM context_summaries WHERE session_id = ?",
    clear_pending="DELETE FROM pending_memory_extractions WHERE session_id = ?",
    count_sessions="SELECT count(*) FROM chat_sessions",
    count_messages="SELECT count(*) FROM chat_messages",
    memory_refs=(
        "SELECT EXISTS (SELECT 1 FROM bots WHERE id = ?1),"
        " (SELECT bot_id FROM chat_sessions WHERE id = ?2),"
        " (SELECT session_id FROM chat_messages WHERE id = ?3),"
        " (SELECT s.bot_id FROM chat_messages m JOIN chat_sessions s ON s.id = m.session_id"
        "  WHERE m.id = ?3),"
        " (SELECT bot_id FROM session_memories WHERE id = ?4),"
        " EXISTS (SELECT 1 FROM session_memories WHERE id = ?5)"
    ),
    insert_memory=_insert(MEMORIES),
    insert_history=_insert(HISTORY),
    get_memory=_select(MEMORIES, "id = ?"),
    get_memories=_select(
        MEMORIES,
        "bot_id = ? AND (? OR superseded_by IS NULL)",
        f"{_MEMORY_ORDER} LIMIT coalesce(?, -1)",
    ),  # fmt: skip
    memories_by_session=_select(MEMORIES, "session_id = ?", "created_at ASC, id ASC"),
    superseded_by="SELECT id, fact FROM session_memories WHERE superseded_by = ?",
    delete_memory="DELETE FROM session_memories WHERE id = ? RETURNING bot_id, fact",
    delete_all_memories="DELETE FROM session_memories WHERE bot_id = ? RETURNING id, fact",
    search=(
        f"SELECT {MEMORIES.cols('m.')}"
        " FROM memories_fts JOIN session_memories m ON m.rowid = memories_fts.rowid"
        " WHERE memories_fts MATCH ?2 AND m.bot_id = ?1 AND (?3 OR m.superseded_by IS NULL)"
        " ORDER BY bm25(memories_fts), m.importance DESC, m.created_at DESC, m.id DESC"
        " LIMIT ?4"
    ),
    history=_select(HISTORY, "memory_id = ?", "created_at ASC, id ASC"),
    lock_memory="SELECT bot_id, superseded_by, fact FROM session_memories WHERE id = ?",
    supersede="UPDATE session_memories SET superseded_by = ? WHERE id = ?",
    insert_pending=(
        f"INSERT INTO pending_memory_extractions ({PENDING.cols()})"
        " SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10 FROM chat_sessions"
        " WHERE id = ?2 AND bot_id = ?3 RETURNING id"
    ),
    session_bot="SELECT bot_id FROM chat_sessions WHERE id = ?",
    pending_for_bot=_select(PENDING, "bot_id = ? AND attempt_count < ?", _PENDING_ORDER),
    all_pending=_select(PENDING, "?1 IS NULL OR bot_id = ?1", _PENDING_ORDER),
    get_pending=_select(PENDING, "id = ?"),
    delete_pending="DELETE FROM pending_memory_extractions WHERE id = ?",
    update_pending=(
        "UPDATE pending_memory_extractions SET attempt_count = ?, last_attempt_at = ?,"
        f" next_attempt_at = ?, error_message = ? WHERE id = ? RETURNING {PENDING.cols()}"
    ),
    # One statement under the write lock: the rows it picks are updated before any other
    # claimer (task or process) can start its own transaction.
    claim=(
        "UPDATE pending_memory_extractions"
        " SET attempt_count = attempt_count + 1, last_attempt_at = ?1, next_attempt_at = ?2"
        " WHERE id IN (SELECT id FROM pending_memory_extractions"
        "  WHERE next_attempt_at <= ?1 AND attempt_count < ?3 AND (?4 IS NULL OR bot_id = ?4)"
        f"  ORDER BY {_PENDING_ORDER} LIMIT ?5)"
        f" RETURNING {PENDING.cols()}"
    ),
    insert_summary=(
        f"INSERT INTO context_summaries ({SUMMARIES.cols()})"
        " SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 FROM chat_sessions"
        " WHERE id = ?2 AND message_count >= ?5 RETURNING id"
    ),
    latest_summary=_select(
        SUMMARIES, "session_id = ?", "messages_end DESC, created_at DESC, id DESC LIMIT 1"
    ),
    list_summaries=_select(SUMMARIES, "session_id = ?", "messages_end ASC, created_at ASC, id ASC"),
)

SQLITE = Dialect(
    name="sqlite",
    sql=SQL,
    to_db={UUID: str, TIME: ts, FLAG: int, TAGS: lambda v: json.dumps(v, ensure_ascii=False)},
    from_db={UUID: uuid.UUID, TIME: datetime.fromisoformat, FLAG: bool, TAGS: json.loads},
    # Each term quoted: FTS5 reads it as a plain string, never as query syntax.
    search_text=lambda terms: " OR ".join(f'"{t}"' for t in terms),
)
