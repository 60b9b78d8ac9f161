"""The SQLite dialect: how it stores values, and the statements it words its own way.

Ids are lowercase hyphenated UUID text; times are fixed-width ISO 8601 UTC text with
microseconds, so text order is time order; tags are JSON text; flags are 0/1.
"""

from __future__ import annotations

import json
import math
import sqlite3
import uuid
from datetime import datetime

from boternity.errors import SchemaError
from boternity.storage.dialect import Dialect
from boternity.storage.search import MARK_CLOSE, MARK_OPEN, READ_CHARS, SEARCHED_CHARS
from boternity.storage.sql import (
    PENDING_ORDER,
    Statements,
    bot_columns,
    message_filters,
    visible_to,
)
from boternity.storage.tables import (
    BOTS,
    FLAG,
    MEMORIES,
    PENDING,
    TAGS,
    TIME,
    UUID,
    UUIDS,
)

# A bot's totals: its row, plus its messages not yet counted there (migration 0011).
_LATER = "CASE WHEN {w} IS NULL OR {b} >= {w} THEN {b} ELSE {w} END"
_BOT_SELECT = bot_columns(
    "b.total_tokens_used + coalesce(w.tokens, 0)",
    _LATER.format(b="b.last_active_at", w="w.last_active"),
)
_BOT_FROM = "bots b LEFT JOIN bot_tokens_waiting w ON w.bot_id = b.id"
_WAITING = "(SELECT {} FROM bot_tokens_waiting WHERE bot_id = bots.id)"

_new = object.__new__
_set_int = uuid.UUID.__dict__["int"].__set__
_set_safe = uuid.UUID.__dict__["is_safe"].__set__
_UNKNOWN = uuid.SafeUUID.unknown


def uuid_of(text: str) -> uuid.UUID:
    """An id read back from its text: the same UUID as ``uuid.UUID(text)``, built without
    its argument parsing (a third of the cost; a read of 50 messages parses 50 ids). The
    text is trusted as every stored row is (written from a UUID); text of another length
    goes through ``uuid.UUID`` and its error."""
    digits = text.replace("-", "")
    if len(digits) != 32:
        return uuid.UUID(text)
    u = _new(uuid.UUID)
    _set_int(u, int(digits, 16))
    _set_safe(u, _UNKNOWN)
    return u


def ts(value: datetime) -> str:
    """Models hold UTC datetimes, so isoformat always ends in +00:00 and is fixed width."""
    return value.isoformat(timespec="microseconds")


def script(sql: str) -> list[str]:
    """Split on complete statements (sqlite3.complete_statement keeps trigger bodies whole)."""
    out: list[str] = []
    buffer = ""
    for line in sql.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                out.append(buffer.strip())
            buffer = ""
    if buffer.split("--")[0].strip():
        raise SchemaError(f"migration ends with an incomplete statement: {buffer.strip()[:80]!r}")
    return out


_SEARCH = (
    f"SELECT {MEMORIES.cols('m.')}{{extra}}"
    " FROM memories_fts JOIN session_memories m ON m.rowid = memories_fts.rowid"
    " WHERE memories_fts MATCH ?2{among} AND m.bot_id = ?1 AND (?3 OR m.superseded_by IS NULL)"
    f" AND (?5 OR {visible_to('?6', 'm.')})"
    " ORDER BY bm25(memories_fts), m.importance DESC, m.created_at DESC, m.id DESC"
    " LIMIT ?4"
)
# (i, how many rows match the i-th query of a JSON array of queries)
_COUNTS = (
    "SELECT j.key, (SELECT count(*) FROM memories_fts WHERE memories_fts MATCH j.value)"
    " FROM json_each({}) j"
)
#: bm25's k1 (fts5_aux.c).
_K1 = 1.2


def bm25_bound(counts: list[int], rows: int) -> float:
    """More than the score, as a positive number, that FTS5's bm25 can give a row for
    phrases that ``counts`` rows of at most ``rows`` match: each phrase adds
    idf * f * (k1 + 1) / (f + k1 * (1 - b + b * D / avgdl)), which is below idf * (k1 + 1)
    whatever its frequency f in the row and the row's length D, with
    idf = max(1e-6, ln((N - n + 0.5) / (n + 0.5))) for n of the index's N <= rows rows."""
    idf = sum(max(1e-6, math.log((rows - n + 0.5) / (n + 0.5))) for n in counts if n > 0)
    return idf * (_K1 + 1) * (1 + 1e-9) + 1e-9


class SqliteStatements(Statements):
    id_list = "json_each(?) AS ids"  # a JSON array of id text
    ledger_exists = (
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
    )
    create_ledger = (
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
        " name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    get_bot = f"SELECT {_BOT_SELECT} FROM {_BOT_FROM} WHERE b.id = ?"
    get_bot_by_slug = f"SELECT {_BOT_SELECT} FROM {_BOT_FROM} WHERE b.slug = ?"
    list_bots = (
        f"SELECT {_BOT_SELECT} FROM {_BOT_FROM}"
        " WHERE b.status = coalesce(?, b.status) AND b.category = coalesce(?, b.category)"
        " ORDER BY b.created_at DESC, b.id DESC LIMIT ? OFFSET ?"
    )
    update_bot = Statements.update_bot.replace(
        f"RETURNING {BOTS.cols()}",
        "RETURNING "
        + BOTS.cols()
        .replace(
            "total_tokens_used",
            f"total_tokens_used + coalesce({_WAITING.format('tokens')}, 0)",
        )
        .replace(
            "last_active_at",
            _LATER.format(b="last_active_at", w=_WAITING.format("last_active")),
        ),
    )
    # SQLite turns an overflowing integer sum into a REAL, which could never be read back:
    # save_message checks the sums' type.
    bump_session = (
        "UPDATE chat_sessions SET message_count = message_count + 1,"
        " total_input_tokens = total_input_tokens + ?,"
        " total_output_tokens = total_output_tokens + ?, last_activity_at = ? WHERE id = ?"
        " RETURNING message_count, bot_id,"
        " typeof(total_input_tokens) = 'integer' AND typeof(total_output_tokens) = 'integer',"
        " total_input_tokens, total_output_tokens"
    )
    search = _SEARCH.format(extra="", among="")
    term_counts = (
        f"SELECT -1, max(rowid) FROM session_memories UNION ALL {_COUNTS.format('?')} ORDER BY 1"
    )
    # The subset is a plain filter (+): as a rowid constraint FTS5 would look each row up.
    search_among = _SEARCH.format(
        extra=", bm25(memories_fts), (SELECT json_group_object(k, n) FROM"
        f" (SELECT -1 AS k, max(rowid) AS n FROM session_memories"
        f"  UNION ALL {_COUNTS.format('?8')}))",
        among=" AND +memories_fts.rowid IN"
        " (SELECT rowid FROM memories_fts WHERE memories_fts MATCH ?7)",
    )
    # The best hits first, then highlight() for those only (it re-reads and tokenizes the
    # text, so it must not run for every match). messages_fts indexes the view
    # messages_fts_source: the start of each message (migrations 0005, 0009).
    search_messages = (
        "WITH hits AS ("
        "  SELECT messages_fts.rowid AS r, bm25(messages_fts) AS score, s.bot_id AS bot_id,"
        "  s.user_id AS user_id"
        "  FROM messages_fts JOIN chat_messages m ON m.rowid = messages_fts.rowid"
        "  JOIN chat_sessions s ON s.id = m.session_id"
        f"  WHERE messages_fts MATCH ?1 AND {message_filters()}"
        "  ORDER BY score, m.created_at DESC, m.id DESC LIMIT ?2)"
        " SELECT m.id, m.session_id, m.seq, m.role, m.created_at, length(m.content),"
        f"  substr(m.content, 1, {READ_CHARS}), hits.bot_id, hits.user_id,"
        f"  highlight(messages_fts, 0, '{MARK_OPEN}', '{MARK_CLOSE}')"
        # CROSS JOIN keeps this order: only the hits are looked up.
        " FROM hits CROSS JOIN messages_fts CROSS JOIN chat_messages m"
        " WHERE messages_fts.rowid = hits.r AND messages_fts MATCH ?1 AND m.rowid = hits.r"
        " ORDER BY hits.score, m.created_at DESC, m.id DESC"
    )
    marks_in_content = True
    # New messages are indexed 64 at a time (migration 0009: those above the mark); a search
    # first indexes those waiting, then moves the mark.
    index_waiting = (
        "INSERT INTO messages_fts (rowid, content)"
        f" SELECT rowid, substr(content, 1, {SEARCHED_CHARS}) FROM chat_messages"
        " WHERE rowid > (SELECT up_to FROM messages_indexed)"
    )
    clear_waiting = (
        "UPDATE messages_indexed SET up_to = (SELECT max(rowid) FROM chat_messages)"
        " WHERE up_to < (SELECT max(rowid) FROM chat_messages)"
    )
    # One statement under the write lock: the rows it picks are updated before any other
    # claimer (task or process) can start its own transaction.
    claim = (
        "UPDATE pending_memory_extractions"
        " SET attempt_count = attempt_count + 1, last_attempt_at = ?1, next_attempt_at = ?2"
        " WHERE id IN (SELECT id FROM pending_memory_extractions"
        "  WHERE next_attempt_at <= ?1 AND attempt_count < ?3 AND (?4 IS NULL OR bot_id = ?4)"
        f"  ORDER BY {PENDING_ORDER} LIMIT ?5)"
        f" RETURNING {PENDING.cols()}"
    )


SQLITE = Dialect(
    name="sqlite",
    sql=SqliteStatements(),
    to_db={
        UUID: str,
        TIME: ts,
        FLAG: int,
        TAGS: lambda v: json.dumps(v, ensure_ascii=False),
        UUIDS: lambda ids: json.dumps([str(i) for i in ids]),
    },
    from_db={UUID: uuid_of, TIME: datetime.fromisoformat, FLAG: bool, TAGS: json.loads},
    # Each term quoted: FTS5 reads it as a plain string, never as query syntax.
    search_text=lambda terms, every: (" AND " if every else " OR ").join(f'"{t}"' for t in terms),
    no_limit=-1,
    script=script,
    score_bound=bm25_bound,
)
