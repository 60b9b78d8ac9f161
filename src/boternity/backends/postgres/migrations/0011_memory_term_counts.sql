-- Schema 11 gives SQLite's memory search the counts of each token of its index (a view
-- over it: fts5vocab). PostgreSQL ranks as before: nothing changes here. The version exists
-- so that a schema number means the same thing on every backend.
SELECT 1;
