-- boternity schema 9 (SQLite): the full-text index of messages (schema 5) keeps a mark instead
-- of a queue.
--
-- Schema 5 queued every new message in messages_to_index (one row written, and one deleted, per
-- message: about a seventh of an append's cost). Messages are only ever appended, and a new
-- row's rowid is one above the largest in the table, so a single number says what is indexed:
-- messages_indexed.up_to, "the index holds every message with rowid <= up_to, and no other".
-- Every 64th message indexes all those above the mark and moves it (the batch trigger), and a
-- search first does the same (the statements index_waiting and clear_waiting), so it finds every
-- committed message. The view messages_fts_source is what the index holds, so 'rebuild' and
-- FTS5's own integrity check agree with the index at every commit.
--
-- A deleted message at or below the mark leaves the index as it came in. When the largest
-- rowids are deleted, the mark comes down to the largest left (or 0): the next message reuses
-- the rowid after it, which must count as not indexed yet.

-- Every message still waiting is indexed, then the queue goes.
DROP TRIGGER messages_fts_insert;
DROP TRIGGER messages_fts_batch;
DROP TRIGGER messages_fts_delete;
DROP TRIGGER messages_fts_update;

INSERT INTO messages_fts (rowid, content)
SELECT p.message_rowid, substr(m.content, 1, 50000)
FROM messages_to_index p JOIN chat_messages m ON m.rowid = p.message_rowid;

DROP VIEW messages_fts_source;
DROP TABLE messages_to_index;

CREATE TABLE messages_indexed (
    one   INTEGER PRIMARY KEY CHECK (one = 1),
    up_to INTEGER NOT NULL CHECK (up_to >= 0)
);
INSERT INTO messages_indexed (one, up_to) VALUES (1, coalesce((SELECT max(rowid) FROM chat_messages), 0));

CREATE VIEW messages_fts_source (message_rowid, content) AS
    SELECT rowid, substr(content, 1, 50000) FROM chat_messages
    WHERE rowid <= (SELECT up_to FROM messages_indexed);

-- Rowids of new messages count up, so this fires once every 64 messages.
CREATE TRIGGER messages_fts_batch AFTER INSERT ON chat_messages
WHEN new.rowid % 64 = 0 BEGIN
    INSERT INTO messages_fts (rowid, content)
    SELECT rowid, substr(content, 1, 50000) FROM chat_messages
    WHERE rowid > (SELECT up_to FROM messages_indexed);
    UPDATE messages_indexed SET up_to = (SELECT max(rowid) FROM chat_messages);
END;

-- Messages are deleted by clear_messages and pop_message and by the cascades from a deleted
-- session or bot (user erasure too).
CREATE TRIGGER messages_fts_delete AFTER DELETE ON chat_messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content)
    SELECT 'delete', old.rowid, substr(old.content, 1, 50000)
    WHERE old.rowid <= (SELECT up_to FROM messages_indexed);
    UPDATE messages_indexed SET up_to = coalesce((SELECT max(rowid) FROM chat_messages), 0)
    WHERE up_to > coalesce((SELECT max(rowid) FROM chat_messages), 0);
END;

-- Messages are never edited today; an indexed one that is is indexed again at once.
CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON chat_messages
WHEN old.rowid <= (SELECT up_to FROM messages_indexed) BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content)
    VALUES ('delete', old.rowid, substr(old.content, 1, 50000));
    INSERT INTO messages_fts (rowid, content) VALUES (new.rowid, substr(new.content, 1, 50000));
END;
