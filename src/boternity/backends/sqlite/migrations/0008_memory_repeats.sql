-- boternity schema: the memory history records repeats. An extracted fact that says a live
-- memory again (the same fact, or the same in other words by meaning) is not saved; the
-- memory's history gets a 'repeated' row with the new wording instead. SQLite cannot change a
-- CHECK constraint in place, so the table is rebuilt with every row and index as it was.
CREATE TABLE memory_history_new (
    id                TEXT PRIMARY KEY NOT NULL,
    memory_id         TEXT NOT NULL,
    bot_id            TEXT NOT NULL REFERENCES bots (id) ON DELETE CASCADE,
    event             TEXT NOT NULL
                      CHECK (event IN ('added', 'superseded', 'deleted', 'restored', 'repeated')),
    actor             TEXT NOT NULL CHECK (actor IN ('user', 'extraction', 'system')),
    fact              TEXT NOT NULL,
    job_id            TEXT,
    related_memory_id TEXT,
    created_at        TEXT NOT NULL,
    user_id           TEXT
);
INSERT INTO memory_history_new
    (id, memory_id, bot_id, event, actor, fact, job_id, related_memory_id, created_at, user_id)
SELECT id, memory_id, bot_id, event, actor, fact, job_id, related_memory_id, created_at, user_id
FROM memory_history;
DROP TABLE memory_history;
ALTER TABLE memory_history_new RENAME TO memory_history;
CREATE INDEX idx_memory_history_memory ON memory_history (memory_id, created_at, id);
CREATE INDEX idx_memory_history_bot ON memory_history (bot_id, created_at);
CREATE INDEX idx_memory_history_user ON memory_history (bot_id, user_id);
