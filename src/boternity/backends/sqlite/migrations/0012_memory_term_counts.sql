-- boternity schema 12 (SQLite): the memory index's counts of each token (how many rows hold
-- it, how often it occurs in all), which the memory search reads to bound what a row holding
-- one word of the query can score (backends/sqlite/ranking.py). A view over memories_fts: it
-- stores nothing, and an upgraded database keeps every row as it was.
CREATE VIRTUAL TABLE memories_fts_terms USING fts5vocab('memories_fts', 'row');
