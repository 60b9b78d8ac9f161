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
    PRIMARY KEY (memory_id, model)
);
-- Floats do not compress: store large vectors out of line as they are.
ALTER TABLE memory_embeddings ALTER COLUMN vector SET STORAGE EXTERNAL;
CREATE INDEX idx_memory_embeddings_bot ON memory_embeddings (bot_id, model);

-- A per-bot change counter, raised in the transaction of every change to the bot's memories
-- or their embeddings: a process holding a bot's vectors in memory asks for this one value to
-- know whether they are still current (any process may have changed them). A constant
-- default: adding the column rewrites no rows.
ALTER TABLE bots ADD COLUMN memory_version bigint NOT NULL DEFAULT 0;
