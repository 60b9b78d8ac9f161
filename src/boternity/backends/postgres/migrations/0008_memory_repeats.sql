-- boternity schema for PostgreSQL: the memory history records repeats, as in the SQLite
-- schema. An extracted fact that says a live memory again (the same fact, or the same in
-- other words by meaning) is not saved; the memory's history gets a 'repeated' row with the
-- new wording instead. The event check (named by PostgreSQL's convention in schema 2) is
-- replaced; every row is kept.
ALTER TABLE memory_history
    DROP CONSTRAINT memory_history_event_check,
    ADD CONSTRAINT memory_history_event_check
        CHECK (event IN ('added', 'superseded', 'deleted', 'restored', 'repeated'));
