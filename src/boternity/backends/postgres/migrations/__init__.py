"""PostgreSQL schema migrations, applied in order by boternity.backends.postgres.store."""
