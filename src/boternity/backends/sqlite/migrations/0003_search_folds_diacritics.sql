-- Schema 3 on PostgreSQL teaches its search to fold diacritics exactly as SQLite's FTS5
-- tokenizer (unicode61, remove_diacritics) already does. Nothing changes here: the version
-- exists so that a schema number means the same thing on every backend.
SELECT 1;
