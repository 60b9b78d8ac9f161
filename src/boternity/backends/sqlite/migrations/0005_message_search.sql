-- boternity schema 5: full-text search over chat messages (search_messages, bnity search).
--
-- The same tokenizer as the memories' index (schema 2), so both searches stem and fold alike:
-- porter: "live" finds "lives"; remove_diacritics 2: "zoe" finds "Zoë".
--
-- Only the first 50,000 characters of a message are indexed (core.search.SEARCHED_CHARS), as on
-- PostgreSQL, where a message's vector must stay under 1 MB whatever its words: both backends
-- find the same messages, and a huge message costs a bounded amount to index. The index reads
-- its text through this view, so the triggers, 'rebuild' and FTS5's own integrity check all
-- see the same text. External content: the text itself is stored once, in chat_messages.
CREATE VIEW messages_fts_source (message_rowid, content) AS
    SELECT rowid, substr(content, 1, 50000) FROM chat_messages;

CREATE VIRTUAL TABLE messages_fts USING fts5(
    content,
    content = 'messages_fts_source',
    content_rowid = 'message_rowid',
    tokenize = 'porter unicode61 remove_diacritics 2'
);

-- Messages are deleted by clear_messages and pop_message and by the cascades from a deleted
-- session or bot: each deleted row leaves the index here, as it came in.
CREATE TRIGGER messages_fts_insert AFTER INSERT ON chat_messages BEGIN
    INSERT INTO messages_fts (rowid, content) VALUES (new.rowid, substr(new.content, 1, 50000));
END;

CREATE TRIGGER messages_fts_delete AFTER DELETE ON chat_messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content)
    VALUES ('delete', old.rowid, substr(old.content, 1, 50000));
END;

CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON chat_messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content)
    VALUES ('delete', old.rowid, substr(old.content, 1, 50000));
    INSERT INTO messages_fts (rowid, content) VALUES (new.rowid, substr(new.content, 1, 50000));
END;

-- Every message already stored.
INSERT INTO messages_fts (messages_fts) VALUES ('rebuild');
