-- boternity schema 1 for PostgreSQL: the same tables, constraints and delete rules as the
-- SQLite schema, with native types. Every table a bot owns carries bot_id, and rows that
-- hang off a session reference it by (id, bot_id), so the schema can be distributed by bot_id
-- (Citus) with every bot's rows co-located.

CREATE TABLE bots (
    id                 uuid PRIMARY KEY,
    slug               text NOT NULL UNIQUE,
    name               text NOT NULL,
    description        text NOT NULL DEFAULT '',
    status             text NOT NULL DEFAULT 'active'
                       CHECK (status IN ('active', 'disabled', 'archived')),
    category           text NOT NULL DEFAULT 'assistant'
                       CHECK (category IN ('assistant', 'creative', 'research', 'utility')),
    tags               text[] NOT NULL DEFAULT '{}',
    user_id            text,
    conversation_count bigint NOT NULL DEFAULT 0 CHECK (conversation_count >= 0),
    total_tokens_used  bigint NOT NULL DEFAULT 0 CHECK (total_tokens_used >= 0),
    version_count      bigint NOT NULL DEFAULT 0 CHECK (version_count >= 0),
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    last_active_at     timestamptz
);
CREATE INDEX idx_bots_created_at ON bots (created_at DESC, id DESC);

CREATE TABLE soul_versions (
    id         uuid PRIMARY KEY,
    bot_id     uuid NOT NULL REFERENCES bots (id) ON DELETE CASCADE,
    content    text NOT NULL,
    hash       text NOT NULL,
    version    bigint NOT NULL CHECK (version >= 1),
    message    text,
    created_at timestamptz NOT NULL,
    UNIQUE (bot_id, version)
);

CREATE TABLE chat_sessions (
    id                  uuid PRIMARY KEY,
    bot_id              uuid NOT NULL REFERENCES bots (id) ON DELETE CASCADE,
    title               text,
    started_at          timestamptz NOT NULL,
    ended_at            timestamptz,
    total_input_tokens  bigint NOT NULL DEFAULT 0 CHECK (total_input_tokens >= 0),
    total_output_tokens bigint NOT NULL DEFAULT 0 CHECK (total_output_tokens >= 0),
    message_count       bigint NOT NULL DEFAULT 0 CHECK (message_count >= 0),
    model               text NOT NULL,
    status              text NOT NULL DEFAULT 'active'
                        CHECK (status IN ('active', 'completed', 'crashed')),
    last_activity_at    timestamptz,
    -- The key that session-owned rows reference, so their bot_id always matches.
    UNIQUE (id, bot_id)
);
CREATE INDEX idx_chat_sessions_bot ON chat_sessions (bot_id, started_at DESC, id DESC);
CREATE INDEX idx_chat_sessions_status ON chat_sessions (status, bot_id);

CREATE TABLE chat_messages (
    id            uuid PRIMARY KEY,
    session_id    uuid NOT NULL,
    bot_id        uuid NOT NULL,
    seq           bigint NOT NULL CHECK (seq >= 1),
    role          text NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
    content       text NOT NULL,
    created_at    timestamptz NOT NULL,
    input_tokens  bigint CHECK (input_tokens >= 0),
    output_tokens bigint CHECK (output_tokens >= 0),
    model         text,
    stop_reason   text,
    response_ms   bigint CHECK (response_ms >= 0),
    -- json, not jsonb: kept as written, so metadata round-trips exactly (jsonb rewrites
    -- numbers such as 1e308 or -0.0).
    metadata      json,
    UNIQUE (session_id, seq),
    FOREIGN KEY (session_id, bot_id) REFERENCES chat_sessions (id, bot_id) ON DELETE CASCADE
);

CREATE TABLE session_memories (
    id                uuid PRIMARY KEY,
    bot_id            uuid NOT NULL REFERENCES bots (id) ON DELETE CASCADE,
    session_id        uuid REFERENCES chat_sessions (id) ON DELETE SET NULL,
    fact              text NOT NULL,
    category          text NOT NULL
                      CHECK (category IN ('preference', 'fact', 'decision', 'context', 'correction')),
    importance        integer NOT NULL CHECK (importance BETWEEN 1 AND 5),
    source_message_id uuid REFERENCES chat_messages (id) ON DELETE SET NULL,
    superseded_by     uuid REFERENCES session_memories (id) ON DELETE SET NULL,
    created_at        timestamptz NOT NULL,
    is_manual         boolean NOT NULL DEFAULT false
);
CREATE INDEX idx_memories_bot_importance
    ON session_memories (bot_id, importance DESC, created_at DESC, id DESC);
CREATE INDEX idx_memories_session ON session_memories (session_id);
-- Needed so ON DELETE SET NULL does not scan the table for every deleted message or memory.
CREATE INDEX idx_memories_source_message ON session_memories (source_message_id);
CREATE INDEX idx_memories_superseded_by ON session_memories (superseded_by);

CREATE TABLE pending_memory_extractions (
    id              uuid PRIMARY KEY,
    session_id      uuid NOT NULL,
    bot_id          uuid NOT NULL REFERENCES bots (id) ON DELETE CASCADE,
    attempt_count   bigint NOT NULL DEFAULT 0 CHECK (attempt_count >= 0),
    last_attempt_at timestamptz,
    next_attempt_at timestamptz NOT NULL,
    error_message   text,
    messages_start  bigint,
    messages_end    bigint,
    created_at      timestamptz NOT NULL,
    CHECK ((messages_start IS NULL) = (messages_end IS NULL)),
    CHECK (messages_start IS NULL OR (messages_start >= 1 AND messages_end >= messages_start)),
    FOREIGN KEY (session_id, bot_id) REFERENCES chat_sessions (id, bot_id) ON DELETE CASCADE
);
CREATE INDEX idx_pending_next_attempt ON pending_memory_extractions (next_attempt_at, id);
CREATE INDEX idx_pending_bot ON pending_memory_extractions (bot_id);
CREATE INDEX idx_pending_session ON pending_memory_extractions (session_id);

CREATE TABLE context_summaries (
    id             uuid PRIMARY KEY,
    session_id     uuid NOT NULL,
    bot_id         uuid NOT NULL,
    summary        text NOT NULL,
    messages_start bigint NOT NULL CHECK (messages_start >= 1),
    messages_end   bigint NOT NULL,
    token_count    bigint NOT NULL CHECK (token_count >= 0),
    created_at     timestamptz NOT NULL,
    CHECK (messages_end >= messages_start),
    FOREIGN KEY (session_id, bot_id) REFERENCES chat_sessions (id, bot_id) ON DELETE CASCADE
);
CREATE INDEX idx_context_summaries_session
    ON context_summaries (session_id, messages_end DESC, created_at DESC, id DESC);
