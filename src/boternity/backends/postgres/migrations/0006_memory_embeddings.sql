-- boternity schema for PostgreSQL: memory embeddings, so memories can be found by meaning
-- (the same semantics as the SQLite schema of this number).
--
-- One row per memory and embedding model: the vector as little-endian float32 bytes, its
-- dimension, and the model that made it (vectors of different models never mix; search uses
-- the configured model's only). Deleting the memory (or its bot) deletes its embeddings.
-- bot_id is the memory's own, copied when the row is written from the memory row itself, so
-- a bot's vectors are read through one index (and rows can be distributed by bot).
--
-- The vectors are searched exactly, in the process (numpy). Where the pgvector extension is
-- installed, a vector column with an HNSW index could serve the search instead: see
-- docs/memory-search.md.
CREATE TABLE memory_embeddings (
    memory_id  uuid NOT NULL REFERENCES session_memories (id) ON DELETE CASCADE,
    model      text NOT NULL CHECK (length(model) BETWEEN 1 AND 200),
    bot_id     uuid NOT NULL REFERENCES bots (id) ON DELETE CASCADE,
    dimension  integer NOT NULL CHECK (dimension BETWEEN 1 AND 16384),
    vector     bytea NOT NULL CHECK (length(vector) = 4 * dimension),
    created_at timestamptz NOT NULL,
    version    bigint NOT NULL,  -- the bot's memory_version that wrote it
    PRIMARY KEY (memory_id, model)
);
-- Floats do not compress: store large vectors out of line as they are.
ALTER TABLE memory_embeddings ALTER COLUMN vector SET STORAGE EXTERNAL;
CREATE INDEX idx_memory_embeddings_bot ON memory_embeddings (bot_id, model, version);

-- A process keeps a bot's vectors in memory between searches. To know whether they are still
-- current, whichever process changed them, every change that affects them raises the bot's
-- memory_version in its own transaction (a new embedding, or a memory superseded, restored or
-- deleted), and records which memories it touched: embeddings carry the version that wrote
-- them, and memory_changes lists the memories superseded, restored or deleted at each
-- version. A process holding version N reads the current value (one row) and, when it moved,
-- only what changed after N. The bot row is locked from the raise to the commit, so a bot's
-- versions commit in order. memory_changes grows like memory_history. A constant default:
-- adding the column rewrites no rows.
ALTER TABLE bots ADD COLUMN memory_version bigint NOT NULL DEFAULT 0;
CREATE TABLE memory_changes (
    bot_id    uuid NOT NULL REFERENCES bots (id) ON DELETE CASCADE,
    version   bigint NOT NULL,
    memory_id uuid NOT NULL,  -- no foreign key: deleted memories are listed too
    PRIMARY KEY (bot_id, version, memory_id)
);
