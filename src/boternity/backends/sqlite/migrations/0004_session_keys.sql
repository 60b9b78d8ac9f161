-- boternity schema 3: session keys, so an integration (the OpenAI Agents SDK, LangChain) can
-- name a chat session with its own session id. At most one session per (bot, key); sessions
-- without a key (NULL) are not indexed.
ALTER TABLE chat_sessions ADD COLUMN session_key TEXT;
CREATE UNIQUE INDEX idx_chat_sessions_key ON chat_sessions (bot_id, session_key)
    WHERE session_key IS NOT NULL;
