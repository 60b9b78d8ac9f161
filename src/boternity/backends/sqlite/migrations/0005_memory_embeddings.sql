-- boternity schema: memory embeddings, so memories can be found by meaning.
--
-- One row per memory and embedding model: the vector as little-endian float32 bytes, its
-- dimension, and the model that made it (vectors of different models never mix; search uses
-- the configured model's only). Deleting the memory (or its bot) deletes its embeddings.
-- bot_id is the memory's own, copied when the row is written from the memory row itself, so
-- a bot's vectors are read through one index.
CREATE TABLE memory_embeddings (
    memory_id  TEXT NOT NULL REFERENCES session_memories (id) ON DELETE CASCADE,
    model      TEXT NOT NULL CHECK (length(model) BETWEEN 1 AND 200),
    bot_id     TEXT NOT NULL REFERENCES bots (id) ON DELETE CASCADE,
    dimension  INTEGER NOT NULL CHECK (dimension BETWEEN 1 AND 16384),
    vector     BLOB NOT NULL CHECK (typeof(vector) = 'blob' AND length(vector) = 4 * dimension),
    created_at TEXT NOT NULL,
    PRIMARY KEY (memory_id, model)
);
CREATE INDEX idx_memory_embeddings_bot ON memory_embeddings (bot_id, model);

-- A per-bot change counter, raised in the transaction of every change to the bot's memories
-- or their embeddings: a process holding a bot's vectors in memory asks for this one value to
-- know whether they are still current (any process may have changed them).
ALTER TABLE bots ADD COLUMN memory_version INTEGER NOT NULL DEFAULT 0;
