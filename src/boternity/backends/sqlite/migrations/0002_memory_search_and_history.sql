-- boternity schema 2: full-text search over memory facts, and the memory history.

-- External-content FTS5 index over session_memories.fact, kept in sync by triggers.
-- porter: "live" finds "lives"; remove_diacritics 2: "Zoe" finds "Zoë".
CREATE VIRTUAL TABLE memories_fts USING fts5(
    fact,
    content = 'session_memories',
    content_rowid = 'rowid',
    tokenize = 'porter unicode61 remove_diacritics 2'
);

CREATE TRIGGER memories_fts_insert AFTER INSERT ON session_memories BEGIN
    INSERT INTO memories_fts (rowid, fact) VALUES (new.rowid, new.fact);
END;

CREATE TRIGGER memories_fts_delete AFTER DELETE ON session_memories BEGIN
    INSERT INTO memories_fts (memories_fts, rowid, fact) VALUES ('delete', old.rowid, old.fact);
END;

CREATE TRIGGER memories_fts_update AFTER UPDATE OF fact ON session_memories BEGIN
    INSERT INTO memories_fts (memories_fts, rowid, fact) VALUES ('delete', old.rowid, old.fact);
    INSERT INTO memories_fts (rowid, fact) VALUES (new.rowid, new.fact);
END;

INSERT INTO memories_fts (memories_fts) VALUES ('rebuild');

-- Every change to a memory, kept after the memory itself is deleted (no FK on memory_id);
-- only deleting the bot removes its history.
CREATE TABLE memory_history (
    id                TEXT PRIMARY KEY NOT NULL,
    memory_id         TEXT NOT NULL,
    bot_id            TEXT NOT NULL REFERENCES bots (id) ON DELETE CASCADE,
    event             TEXT NOT NULL CHECK (event IN ('added', 'superseded', 'deleted', 'restored')),
    actor             TEXT NOT NULL CHECK (actor IN ('user', 'extraction', 'system')),
    fact              TEXT NOT NULL,
    job_id            TEXT,
    related_memory_id TEXT,
    created_at        TEXT NOT NULL
);
CREATE INDEX idx_memory_history_memory ON memory_history (memory_id, created_at, id);
CREATE INDEX idx_memory_history_bot ON memory_history (bot_id, created_at);

-- Memories that existed before history was kept get an 'added' record (the memory's own id
-- is unique among history ids too).
INSERT INTO memory_history (id, memory_id, bot_id, event, actor, fact, created_at)
SELECT id, id, bot_id, 'added', CASE WHEN is_manual THEN 'user' ELSE 'extraction' END, fact,
       created_at
FROM session_memories;
