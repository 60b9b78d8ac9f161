-- boternity schema for PostgreSQL: users, as in the SQLite schema. A chat session, a memory
-- and a memory-history row may belong to a user, the application's own key for the person
-- ("discord:81234"); rows without one (NULL, every row written before this version) are the
-- bot's own (docs/users.md). Adding a nullable column without a default rewrites no rows.
ALTER TABLE chat_sessions ADD COLUMN user_id text;
ALTER TABLE session_memories ADD COLUMN user_id text;
ALTER TABLE memory_history ADD COLUMN user_id text;

-- A user's sessions, newest first; what a conversation sees is two ranges of the memory
-- index (the user-less rows and the user's), each already in recall order; erasing a user
-- finds their history rows directly.
CREATE INDEX idx_chat_sessions_user ON chat_sessions (bot_id, user_id, started_at DESC, id DESC);
CREATE INDEX idx_memories_user
    ON session_memories (bot_id, user_id, importance DESC, created_at DESC, id DESC);
CREATE INDEX idx_memory_history_user ON memory_history (bot_id, user_id);
