-- boternity schema 5: full-text search over chat messages (search_messages, bnity search).
--
-- The same tokenizer as the memories' index (schema 2), so both searches stem and fold alike:
-- porter: "live" finds "lives"; remove_diacritics 2: "zoe" finds "Zoë". External content: the
-- text itself is stored once, in chat_messages.
--
-- Only the first 50,000 characters of a message are indexed (core.search.SEARCHED_CHARS), as on
-- PostgreSQL, where a message's vector must stay under 1 MB whatever its words: both backends
-- find the same messages, and indexing a huge message costs a bounded amount.
--
-- Indexed in batches: FTS5 writes a new segment of its index at every commit that changed it
-- (about 40 µs of CPU and several pages for a one-message transaction, more than the message
-- itself costs). So a new message waits in messages_to_index (one small row), and every 64th
-- indexes all that wait, in one go; search_messages first indexes what still waits (the
-- statements index_waiting and clear_waiting), so it finds every committed message. The view
-- is what the index holds, waiting messages left out, so 'rebuild' and FTS5's own integrity
-- check agree with the index at every commit.
CREATE TABLE messages_to_index (message_rowid INTEGER PRIMARY KEY);

CREATE VIEW messages_fts_source (message_rowid, content) AS
    SELECT rowid, substr(content, 1, 50000) FROM chat_messages
    WHERE rowid NOT IN (SELECT message_rowid FROM messages_to_index);

CREATE VIRTUAL TABLE messages_fts USING fts5(
    content,
    content = 'messages_fts_source',
    content_rowid = 'message_rowid',
    tokenize = 'porter unicode61 remove_diacritics 2'
);

CREATE TRIGGER messages_fts_insert AFTER INSERT ON chat_messages BEGIN
    INSERT INTO messages_to_index (message_rowid) VALUES (new.rowid);
END;

-- Rowids of new messages count up, so this fires once every 64 messages.
CREATE TRIGGER messages_fts_batch AFTER INSERT ON messages_to_index
WHEN new.message_rowid % 64 = 0 BEGIN
    INSERT INTO messages_fts (rowid, content)
    SELECT p.message_rowid, substr(m.content, 1, 50000)
    FROM messages_to_index p JOIN chat_messages m ON m.rowid = p.message_rowid;
    DELETE FROM messages_to_index;
END;

-- Messages are deleted by clear_messages and pop_message and by the cascades from a deleted
-- session or bot: an indexed one leaves the index as it came in, a pending one stops waiting.
CREATE TRIGGER messages_fts_delete AFTER DELETE ON chat_messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content)
    SELECT 'delete', old.rowid, substr(old.content, 1, 50000)
    WHERE NOT EXISTS (SELECT 1 FROM messages_to_index WHERE message_rowid = old.rowid);
    DELETE FROM messages_to_index WHERE message_rowid = old.rowid;
END;

-- Messages are never edited today; one that is leaves the index and waits to come back.
CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON chat_messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content)
    SELECT 'delete', old.rowid, substr(old.content, 1, 50000)
    WHERE NOT EXISTS (SELECT 1 FROM messages_to_index WHERE message_rowid = old.rowid);
    INSERT OR IGNORE INTO messages_to_index (message_rowid) VALUES (new.rowid);
END;

-- Every message already stored.
INSERT INTO messages_fts (messages_fts) VALUES ('rebuild');
