-- boternity schema 1: bots, souls, chat sessions and messages, memories, the extraction
-- queue and context summaries. Times are fixed-width ISO 8601 UTC text
-- (YYYY-MM-DDTHH:MM:SS.ffffff+00:00) so text order is time order; ids are UUID text.

CREATE TABLE bots (
    id                 TEXT PRIMARY KEY NOT NULL,
    slug               TEXT NOT NULL UNIQUE,
    name               TEXT NOT NULL,
    description        TEXT NOT NULL DEFAULT '',
    status             TEXT NOT NULL DEFAULT 'active'
                       CHECK (status IN ('active', 'disabled', 'archived')),
    category           TEXT NOT NULL DEFAULT 'assistant'
                       CHECK (category IN ('assistant', 'creative', 'research', 'utility')),
    tags               TEXT NOT NULL DEFAULT '[]',
    user_id            TEXT,
    conversation_count INTEGER NOT NULL DEFAULT 0 CHECK (conversation_count >= 0),
    total_tokens_used  INTEGER NOT NULL DEFAULT 0 CHECK (total_tokens_used >= 0),
    version_count      INTEGER NOT NULL DEFAULT 0 CHECK (version_count >= 0),
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL,
    last_active_at     TEXT
);
CREATE INDEX idx_bots_created_at ON bots (created_at DESC, id DESC);

CREATE TABLE soul_versions (
    id         TEXT PRIMARY KEY NOT NULL,
    bot_id     TEXT NOT NULL REFERENCES bots (id) ON DELETE CASCADE,
    content    TEXT NOT NULL,
    hash       TEXT NOT NULL,
    version    INTEGER NOT NULL CHECK (version >= 1),
    message    TEXT,
    created_at TEXT NOT NULL,
    UNIQUE (bot_id, version)
);

CREATE TABLE chat_sessions (
    id                  TEXT PRIMARY KEY NOT NULL,
    bot_id              TEXT NOT NULL REFERENCES bots (id) ON DELETE CASCADE,
    title               TEXT,
    started_at          TEXT NOT NULL,
    ended_at            TEXT,
    total_input_tokens  INTEGER NOT NULL DEFAULT 0 CHECK (total_input_tokens >= 0),
    total_output_tokens INTEGER NOT NULL DEFAULT 0 CHECK (total_output_tokens >= 0),
    message_count       INTEGER NOT NULL DEFAULT 0 CHECK (message_count >= 0),
    model               TEXT NOT NULL,
    status              TEXT NOT NULL DEFAULT 'active'
                        CHECK (status IN ('active', 'completed', 'crashed')),
    last_activity_at    TEXT
);
CREATE INDEX idx_chat_sessions_bot ON chat_sessions (bot_id, started_at DESC, id DESC);
CREATE INDEX idx_chat_sessions_status ON chat_sessions (status, bot_id);

CREATE TABLE chat_messages (
    id            TEXT PRIMARY KEY NOT NULL,
    session_id    TEXT NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    seq           INTEGER NOT NULL CHECK (seq >= 1),
    role          TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
    content       TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    input_tokens  INTEGER CHECK (input_tokens >= 0),
    output_tokens INTEGER CHECK (output_tokens >= 0),
    model         TEXT,
    stop_reason   TEXT,
    response_ms   INTEGER CHECK (response_ms >= 0),
    metadata      TEXT,
    UNIQUE (session_id, seq)
);

CREATE TABLE session_memories (
    id                TEXT PRIMARY KEY NOT NULL,
    bot_id            TEXT NOT NULL REFERENCES bots (id) ON DELETE CASCADE,
    session_id        TEXT REFERENCES chat_sessions (id) ON DELETE SET NULL,
    fact              TEXT NOT NULL,
    category          TEXT NOT NULL
                      CHECK (category IN ('preference', 'fact', 'decision', 'context', 'correction')),
    importance        INTEGER NOT NULL CHECK (importance BETWEEN 1 AND 5),
    source_message_id TEXT REFERENCES chat_messages (id) ON DELETE SET NULL,
    superseded_by     TEXT REFERENCES session_memories (id) ON DELETE SET NULL,
    created_at        TEXT NOT NULL,
    is_manual         INTEGER NOT NULL DEFAULT 0 CHECK (is_manual IN (0, 1))
);
CREATE INDEX idx_memories_bot_importance
    ON session_memories (bot_id, importance DESC, created_at DESC, id DESC);
CREATE INDEX idx_memories_session ON session_memories (session_id);
-- Needed so ON DELETE SET NULL does not scan the table for every deleted message or memory.
CREATE INDEX idx_memories_source_message ON session_memories (source_message_id);
CREATE INDEX idx_memories_superseded_by ON session_memories (superseded_by);

CREATE TABLE pending_memory_extractions (
    id              TEXT PRIMARY KEY NOT NULL,
    session_id      TEXT NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    bot_id          TEXT NOT NULL REFERENCES bots (id) ON DELETE CASCADE,
    attempt_count   INTEGER NOT NULL DEFAULT 0 CHECK (attempt_count >= 0),
    last_attempt_at TEXT,
    next_attempt_at TEXT NOT NULL,
    error_message   TEXT,
    messages_start  INTEGER,
    messages_end    INTEGER,
    created_at      TEXT NOT NULL,
    CHECK ((messages_start IS NULL) = (messages_end IS NULL)),
    CHECK (messages_start IS NULL OR (messages_start >= 1 AND messages_end >= messages_start))
);
CREATE INDEX idx_pending_next_attempt ON pending_memory_extractions (next_attempt_at, id);
CREATE INDEX idx_pending_bot ON pending_memory_extractions (bot_id);
CREATE INDEX idx_pending_session ON pending_memory_extractions (session_id);

CREATE TABLE context_summaries (
    id             TEXT PRIMARY KEY NOT NULL,
    session_id     TEXT NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    summary        TEXT NOT NULL,
    messages_start INTEGER NOT NULL CHECK (messages_start >= 1),
    messages_end   INTEGER NOT NULL,
    token_count    INTEGER NOT NULL CHECK (token_count >= 0),
    created_at     TEXT NOT NULL,
    CHECK (messages_end >= messages_start)
);
CREATE INDEX idx_context_summaries_session
    ON context_summaries (session_id, messages_end DESC, created_at DESC, id DESC);
