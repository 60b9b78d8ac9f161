"""BotRepository on PostgreSQL."""

from __future__ import annotations

import uuid

from boternity.backends.common import (
    check_enum,
    check_id,
    check_model,
    check_page,
    check_slug,
    check_version,
)
from boternity.backends.postgres import rows
from boternity.backends.postgres.pool import Conn, Database, affected
from boternity.errors import NotFoundError
from boternity.ids import utc_now
from boternity.models import Bot, BotCategory, BotStatus, SoulVersion, soul_hash

_INSERT_BOT = (
    f"INSERT INTO bots ({rows.BOT_COLUMNS}, tokens_reserved) VALUES ({rows.placeholders(15)})"
)
_GET_BOT = f"SELECT {rows.BOT_SELECT} FROM bots b {rows.BOT_TOTALS} WHERE b.id = $1"
_GET_BOT_BY_SLUG = f"SELECT {rows.BOT_SELECT} FROM bots b {rows.BOT_TOTALS} WHERE b.slug = $1"
_LIST_BOTS = (
    f"SELECT {rows.BOT_SELECT} FROM bots b {rows.BOT_TOTALS}"
    " WHERE ($1::text IS NULL OR b.status = $1) AND ($2::text IS NULL OR b.category = $2)"
    " ORDER BY b.created_at DESC, b.id DESC LIMIT $3 OFFSET $4"
)
_UPDATE_BOT = (
    "WITH b AS (UPDATE bots SET name = $1, slug = $2, description = $3, status = $4,"
    "  category = $5, tags = $6, user_id = $7, updated_at = $8 WHERE id = $9 RETURNING *)"
    f" SELECT {rows.BOT_SELECT} FROM b {rows.BOT_TOTALS}"
)
_DELETE_BOT = "DELETE FROM bots WHERE id = $1"
# Two statements in one transaction: the first locks the bot row, so the second (a fresh
# snapshot under READ COMMITTED) sees every version committed before it and picks N+1.
_BUMP_SOUL_COUNT = (
    "UPDATE bots SET version_count = version_count + 1, updated_at = $2 WHERE id = $1 RETURNING id"
)
_INSERT_SOUL = (
    f"INSERT INTO soul_versions ({rows.SOUL_COLUMNS})"
    " SELECT $1, $2, $3, $4, coalesce(max(version), 0) + 1, $5, $6"
    " FROM soul_versions WHERE bot_id = $2 RETURNING version"
)
_GET_SOUL = f"SELECT {rows.SOUL_COLUMNS} FROM soul_versions WHERE bot_id = $1 AND version = $2"
_LATEST_SOUL = (
    f"SELECT {rows.SOUL_COLUMNS} FROM soul_versions WHERE bot_id = $1 ORDER BY version DESC LIMIT 1"
)
_LIST_SOULS = (
    f"SELECT {rows.SOUL_COLUMNS} FROM soul_versions WHERE bot_id = $1 ORDER BY version ASC, id ASC"
)


class PostgresBotRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create_bot(self, bot: Bot) -> Bot:
        check_model(bot, Bot, "create_bot")
        params = rows.bot_params(bot)

        async def unit(conn: Conn) -> Bot:
            await conn.execute(_INSERT_BOT, *params)
            return bot

        return await self._db.write(
            unit,
            messages={
                "bots_pkey": f"a bot with id {bot.id} already exists",
                "bots_slug_key": f"a bot with slug {bot.slug!r} already exists",
            },
        )

    async def get_bot(self, bot_id: uuid.UUID) -> Bot | None:
        key = check_id(bot_id, "bot_id")
        row = await self._db.read(lambda c: c.fetchrow(_GET_BOT, key))
        return None if row is None else rows.bot(row)

    async def get_bot_by_slug(self, slug: str) -> Bot | None:
        check_slug(slug)
        row = await self._db.read(lambda c: c.fetchrow(_GET_BOT_BY_SLUG, slug))
        return None if row is None else rows.bot(row)

    async def list_bots(
        self,
        *,
        status: BotStatus | str | None = None,
        category: BotCategory | str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[Bot]:
        st = check_enum(BotStatus, status, "status")
        cat = check_enum(BotCategory, category, "category")
        lim, off = check_page(limit, offset)
        params = (None if st is None else st.value, None if cat is None else cat.value, lim, off)
        found = await self._db.read(lambda c: c.fetch(_LIST_BOTS, *params), browse=True)
        return [rows.bot(r) for r in found]

    async def update_bot(self, bot: Bot) -> Bot:
        check_model(bot, Bot, "update_bot")
        params = (
            bot.name, bot.slug, bot.description, bot.status.value, bot.category.value, bot.tags,
            bot.user_id, utc_now(), bot.id,
        )  # fmt: skip

        async def unit(conn: Conn) -> Bot:
            row = await conn.fetchrow(_UPDATE_BOT, *params)
            if row is None:
                raise NotFoundError(f"bot {bot.id} not found")
            return rows.bot(row)

        return await self._db.write(
            unit, messages={"bots_slug_key": f"another bot already has slug {bot.slug!r}"}
        )

    async def delete_bot(self, bot_id: uuid.UUID) -> None:
        key = check_id(bot_id, "bot_id")

        async def unit(conn: Conn) -> None:
            if affected(await conn.execute(_DELETE_BOT, key)) == 0:
                raise NotFoundError(f"bot {bot_id} not found")

        await self._db.write(unit)

    async def save_soul(
        self, bot_id: uuid.UUID, content: str, *, message: str | None = None
    ) -> SoulVersion:
        key = check_id(bot_id, "bot_id")
        # Built once here so bad text is refused before anything is sent.
        draft = SoulVersion(
            bot_id=key, content=content, version=1, hash=soul_hash(content), message=message
        )

        async def unit(conn: Conn) -> int:
            if await conn.fetchval(_BUMP_SOUL_COUNT, key, draft.created_at) is None:
                raise NotFoundError(f"bot {bot_id} not found")
            version: int = await conn.fetchval(
                _INSERT_SOUL, draft.id, key, content, draft.hash, message, draft.created_at
            )
            return version

        version = await self._db.write(unit, transaction=True)
        return SoulVersion(
            id=draft.id, bot_id=key, content=content, version=version, hash=draft.hash,
            message=message, created_at=draft.created_at,
        )  # fmt: skip

    async def get_soul(self, bot_id: uuid.UUID, version: int | None = None) -> SoulVersion | None:
        key = check_id(bot_id, "bot_id")
        if version is None:
            row = await self._db.read(lambda c: c.fetchrow(_LATEST_SOUL, key))
        else:
            check_version(version)
            row = await self._db.read(lambda c: c.fetchrow(_GET_SOUL, key, version))
        return None if row is None else rows.soul(row)

    async def list_soul_versions(self, bot_id: uuid.UUID) -> list[SoulVersion]:
        key = check_id(bot_id, "bot_id")
        found = await self._db.read(lambda c: c.fetch(_LIST_SOULS, key), browse=True)
        return [rows.soul(r) for r in found]
