-- boternity schema 11 (SQLite): a bot's token total and last activity are counted 64 messages
-- at a time, not rewritten by every message.
--
-- Until now every save_message updated its bot's row (total_tokens_used, last_active_at): one
-- more statement, and one more page in the commit, on every append. Now, as for the message
-- index (schema 9), one number says what is counted: messages_counted.up_to, "the bot rows
-- hold the tokens and activity of every message with rowid <= up_to, and of no other". Every
-- 64th message counts all those above the mark and moves it (the batch trigger); a bot read
-- adds those still waiting (the view bot_tokens_waiting: at most 63 messages), so what is read
-- is exact at every commit.
--
-- Tokens are never given back: a message deleted while it waits (popped, cleared, its session
-- deleted) is counted first, as today, where its tokens were counted when it was saved. When
-- the largest rowids are deleted, the mark comes down to the largest left (or 0): the next
-- message reuses the rowid after it, which must count as waiting.
--
-- The bot's total can no longer be checked against 2^63 - 1 when each message is saved, so it
-- is bounded as on PostgreSQL: tokens_reserved is what deleted sessions used plus, per live
-- session, the next multiple of 2^24 above its total (at most 2^63 - 1); a new session reserves
-- one step, a message whose session crosses a step raises the reservation (refused if that
-- would pass 2^63 - 1), a deleted session gives back what it did not use. A bot's total is
-- never above its reservation, so counting can never overflow.

CREATE TABLE messages_counted (
    one   INTEGER PRIMARY KEY CHECK (one = 1),
    up_to INTEGER NOT NULL CHECK (up_to >= 0)
);
INSERT INTO messages_counted (one, up_to)
VALUES (1, coalesce((SELECT max(rowid) FROM chat_messages), 0));

-- Per bot, the tokens and the latest activity of the messages not yet counted.
CREATE VIEW bot_tokens_waiting AS
SELECT s.bot_id AS bot_id,
       sum(coalesce(m.input_tokens, 0) + coalesce(m.output_tokens, 0)) AS tokens,
       max(s.last_activity_at) AS last_active
FROM chat_messages m JOIN chat_sessions s ON s.id = m.session_id
WHERE m.rowid > (SELECT up_to FROM messages_counted)
GROUP BY s.bot_id;

-- Every message so far is counted (save_message updated the bot row), so a bot reserves what
-- it used plus, per live session, the rest of its step (2^24 = 16777216; 549755813887 is
-- (2^63 - 1) / 2^24: there the next step would pass 2^63 - 1).
ALTER TABLE bots ADD COLUMN tokens_reserved INTEGER NOT NULL DEFAULT 0
    CHECK (typeof(tokens_reserved) = 'integer' AND tokens_reserved >= 0);
UPDATE bots SET tokens_reserved = min(9223372036854775807, total_tokens_used + coalesce((
    SELECT sum(CASE WHEN t / 16777216 >= 549755813887 THEN 9223372036854775807 - t
                    ELSE (t / 16777216 + 1) * 16777216 - t END)
    FROM (SELECT total_input_tokens + total_output_tokens AS t FROM chat_sessions
          WHERE bot_id = bots.id)), 0));

-- Moving the mark up counts what was waiting (the one place that does).
CREATE TRIGGER bot_totals_count BEFORE UPDATE OF up_to ON messages_counted
WHEN new.up_to > old.up_to BEGIN
    UPDATE bots SET total_tokens_used = total_tokens_used + w.tokens,
        last_active_at = CASE WHEN w.last_active IS NULL OR last_active_at >= w.last_active
                              THEN last_active_at ELSE w.last_active END
    FROM bot_tokens_waiting w WHERE bots.id = w.bot_id;
END;

CREATE TRIGGER bot_totals_batch AFTER INSERT ON chat_messages
WHEN new.rowid % 64 = 0 BEGIN
    UPDATE messages_counted SET up_to = (SELECT max(rowid) FROM chat_messages);
END;

CREATE TRIGGER bot_totals_before_message_delete BEFORE DELETE ON chat_messages
WHEN old.rowid > (SELECT up_to FROM messages_counted) BEGIN
    UPDATE messages_counted SET up_to = (SELECT max(rowid) FROM chat_messages);
END;

CREATE TRIGGER bot_totals_after_message_delete AFTER DELETE ON chat_messages
WHEN old.rowid >= (SELECT up_to FROM messages_counted) BEGIN
    UPDATE messages_counted SET up_to = coalesce((SELECT max(rowid) FROM chat_messages), 0)
    WHERE up_to > coalesce((SELECT max(rowid) FROM chat_messages), 0);
END;

-- Before its messages go (their session's row is needed to find their bot): count them, and
-- give back the part of the reservation the session did not use.
CREATE TRIGGER bot_totals_before_session_delete BEFORE DELETE ON chat_sessions BEGIN
    UPDATE messages_counted SET up_to = (SELECT max(rowid) FROM chat_messages)
    WHERE up_to < (SELECT max(rowid) FROM chat_messages);
    UPDATE bots SET tokens_reserved = tokens_reserved - (
        CASE WHEN (old.total_input_tokens + old.total_output_tokens) / 16777216 >= 549755813887
             THEN 9223372036854775807
             ELSE ((old.total_input_tokens + old.total_output_tokens) / 16777216 + 1) * 16777216
        END - (old.total_input_tokens + old.total_output_tokens))
    WHERE id = old.bot_id;
END;
