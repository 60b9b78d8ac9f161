-- boternity schema 5 for PostgreSQL: full-text search over chat messages (search_messages,
-- bnity search), folded exactly as the memories' search (boternity_fold, schema 3) and as
-- SQLite's tokenizer, so both backends find the same messages for accented words.
--
-- Only the first 50,000 characters of a message are indexed (core.search.SEARCHED_CHARS), on
-- both backends: a tsvector must stay under 1 MB, and a message of 1,000,000 characters (the
-- longest allowed) could exceed that and be refused. 50,000 characters make at most about
-- 500 kB of vector whatever the words.
--
-- A stored generated column keeps the vector in step with the message without triggers; adding
-- it computes it for every message already stored (the table is rewritten once). Deleted
-- messages take their vector and index entries with them.
ALTER TABLE chat_messages
    ADD COLUMN content_tsv tsvector
    GENERATED ALWAYS AS (to_tsvector('english', boternity_fold(left(content, 50000)))) STORED;
CREATE INDEX idx_chat_messages_content_tsv ON chat_messages USING GIN (content_tsv);
