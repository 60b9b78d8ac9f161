-- boternity schema 10 (SQLite): a bot's token total and last activity are read from its
-- sessions, as on PostgreSQL, so save_message no longer updates the bot row (one statement
-- and one page less per message).
--
-- bots.total_tokens_used and bots.last_active_at now hold what the bot's deleted sessions
-- contributed; readers add the live sessions' totals and latest activity (dialect.py).
-- tokens_reserved is total_tokens_used plus, per live session, the next multiple of 2^24
-- above its total (at most 2^63 - 1): save_message raises it only when a session crosses such
-- a step, and an overflow there refuses the message, so the total read back always fits in
-- 64 bits. A new session reserves its first step; a deleted one (delete_session, user erasure)
-- folds its tokens and activity into the bot's columns and frees the rest of its reservation.
ALTER TABLE bots ADD COLUMN tokens_reserved INTEGER NOT NULL DEFAULT 0;

-- Every bot so far counted its live sessions' tokens in its own column: they move out.
UPDATE bots SET total_tokens_used = max(0, total_tokens_used - coalesce(
    (SELECT sum(s.total_input_tokens + s.total_output_tokens) FROM chat_sessions s
     WHERE s.bot_id = bots.id), 0));

-- What each live session holds, summed in floating point first: a bot whose reservations
-- would pass 2^63 - 1 (only one near that total already) reserves the most there is.
UPDATE bots SET tokens_reserved = CASE
    WHEN total_tokens_used + (SELECT total(CASE WHEN t / 16777216 < 549755813887
                                           THEN (t / 16777216 + 1) * 16777216
                                           ELSE 9223372036854775807 END)
                              FROM (SELECT s.total_input_tokens + s.total_output_tokens AS t
                                    FROM chat_sessions s WHERE s.bot_id = bots.id))
         >= 9.2e18 THEN 9223372036854775807
    ELSE total_tokens_used + (SELECT coalesce(sum(CASE WHEN t / 16777216 < 549755813887
                                                 THEN (t / 16777216 + 1) * 16777216
                                                 ELSE 9223372036854775807 END), 0)
                              FROM (SELECT s.total_input_tokens + s.total_output_tokens AS t
                                    FROM chat_sessions s WHERE s.bot_id = bots.id))
END;

-- A deleted session's tokens and activity stay with its bot (a bot being deleted has no row
-- left to update: nothing happens).
CREATE TRIGGER sessions_fold_into_bot AFTER DELETE ON chat_sessions BEGIN
    UPDATE bots SET
        total_tokens_used = total_tokens_used + old.total_input_tokens + old.total_output_tokens,
        tokens_reserved = tokens_reserved
            - (CASE WHEN (old.total_input_tokens + old.total_output_tokens) / 16777216
                         < 549755813887
                    THEN ((old.total_input_tokens + old.total_output_tokens) / 16777216 + 1)
                         * 16777216
                    ELSE 9223372036854775807 END
               - old.total_input_tokens - old.total_output_tokens),
        last_active_at = coalesce(max(last_active_at, old.last_activity_at), last_active_at,
                                  old.last_activity_at)
    WHERE id = old.bot_id;
END;
