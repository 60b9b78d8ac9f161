-- boternity schema 2 for PostgreSQL: full-text search over memory facts, and the memory
-- history (the same semantics as the SQLite schema 2).

-- english: stems ("lives" finds "live") and drops stop words. A stored generated column
-- keeps the vector in step with the fact without triggers.
ALTER TABLE session_memories
    ADD COLUMN fact_tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', fact)) STORED;
CREATE INDEX idx_memories_fact_tsv ON session_memories USING GIN (fact_tsv);

-- Every change to a memory, kept after the memory itself is deleted (no FK on memory_id);
-- only deleting the bot removes its history. Carries bot_id for distribution by bot.
CREATE TABLE memory_history (
    id                uuid PRIMARY KEY,
    memory_id         uuid NOT NULL,
    bot_id            uuid NOT NULL REFERENCES bots (id) ON DELETE CASCADE,
    event             text NOT NULL CHECK (event IN ('added', 'superseded', 'deleted', 'restored')),
    actor             text NOT NULL CHECK (actor IN ('user', 'extraction', 'system')),
    fact              text NOT NULL,
    job_id            uuid,
    related_memory_id uuid,
    created_at        timestamptz NOT NULL
);
CREATE INDEX idx_memory_history_memory ON memory_history (memory_id, created_at, id);
CREATE INDEX idx_memory_history_bot ON memory_history (bot_id, created_at);

-- Memories that existed before history was kept get an 'added' record (the memory's own id
-- is unique among history ids too).
INSERT INTO memory_history (id, memory_id, bot_id, event, actor, fact, created_at)
SELECT id, id, bot_id, 'added', CASE WHEN is_manual THEN 'user' ELSE 'extraction' END, fact,
       created_at
FROM session_memories;
