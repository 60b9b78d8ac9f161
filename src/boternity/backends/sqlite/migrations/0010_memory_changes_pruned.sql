-- boternity schema: memory_changes is pruned. It lists, per bot version, the memories whose
-- vectors changed, so a process holding a bot's vectors reads only what changed since; kept
-- forever, it grew with every supersession, deletion and erasure. Now every 64 versions the
-- notes older than the bot's last 1024 versions go (core.vectors.KEEP_VERSIONS), and the bot
-- records up to which version they went: a process holding vectors older than that reads
-- them all again, as it does after many changes. 0: nothing pruned yet.
ALTER TABLE bots ADD COLUMN changes_pruned_to INTEGER NOT NULL DEFAULT 0;
