"""BotRepository on SQLite."""

from __future__ import annotations

import json
import sqlite3
import uuid

from boternity.backends.common import (
    check_enum,
    check_id,
    check_model,
    check_page,
    check_slug,
    check_version,
)
from boternity.backends.sqlite import rows
from boternity.backends.sqlite.pool import Readers, Writer
from boternity.errors import ConflictError, NotFoundError
from boternity.ids import utc_now
from boternity.models import Bot, BotCategory, BotStatus, SoulVersion, soul_hash

_INSERT_BOT = f"INSERT INTO bots ({rows.BOT_COLUMNS}) VALUES ({', '.join('?' * 14)})"
_GET_BOT = f"SELECT {rows.BOT_COLUMNS} FROM bots WHERE id = ?"
_GET_BOT_BY_SLUG = f"SELECT {rows.BOT_COLUMNS} FROM bots WHERE slug = ?"
_LIST_BOTS = (
    f"SELECT {rows.BOT_COLUMNS} FROM bots"
    " WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR category = ?2)"
    " ORDER BY created_at DESC, id DESC LIMIT ?3 OFFSET ?4"
)
_UPDATE_BOT = (
    "UPDATE bots SET name = ?, slug = ?, description = ?, status = ?, category = ?, tags = ?,"
    f" user_id = ?, updated_at = ? WHERE id = ? RETURNING {rows.BOT_COLUMNS}"
)
_SLUG_OWNER = "SELECT id FROM bots WHERE slug = ?"
_DELETE_BOT = "DELETE FROM bots WHERE id = ?"
_NEXT_SOUL_VERSION = (
    "UPDATE bots SET version_count = version_count + 1, updated_at = ? WHERE id = ?"
    " RETURNING (SELECT coalesce(max(version), 0) + 1 FROM soul_versions WHERE bot_id = ?)"
)
_INSERT_SOUL = f"INSERT INTO soul_versions ({rows.SOUL_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
_GET_SOUL = f"SELECT {rows.SOUL_COLUMNS} FROM soul_versions WHERE bot_id = ? AND version = ?"
_LATEST_SOUL = (
    f"SELECT {rows.SOUL_COLUMNS} FROM soul_versions WHERE bot_id = ? ORDER BY version DESC LIMIT 1"
)
_LIST_SOULS = (
    f"SELECT {rows.SOUL_COLUMNS} FROM soul_versions WHERE bot_id = ? ORDER BY version ASC, id ASC"
)


class SqliteBotRepository:
    def __init__(self, writer: Writer, readers: Readers) -> None:
        self._writer = writer
        self._readers = readers

    async def create_bot(self, bot: Bot) -> Bot:
        check_model(bot, Bot, "create_bot")
        params = rows.bot_params(bot)

        def unit(conn: sqlite3.Connection) -> Bot:
            if conn.execute("SELECT 1 FROM bots WHERE id = ?", (params[0],)).fetchone():
                raise ConflictError(f"a bot with id {bot.id} already exists")
            if conn.execute(_SLUG_OWNER, (bot.slug,)).fetchone():
                raise ConflictError(f"a bot with slug {bot.slug!r} already exists")
            conn.execute(_INSERT_BOT, params)
            return bot

        return await self._writer.run(unit)

    async def get_bot(self, bot_id: uuid.UUID) -> Bot | None:
        key = str(check_id(bot_id, "bot_id"))
        row = await self._readers.run(lambda c: c.execute(_GET_BOT, (key,)).fetchone())
        return None if row is None else rows.bot(row)

    async def get_bot_by_slug(self, slug: str) -> Bot | None:
        check_slug(slug)
        row = await self._readers.run(lambda c: c.execute(_GET_BOT_BY_SLUG, (slug,)).fetchone())
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
        params = (
            None if st is None else st.value,
            None if cat is None else cat.value,
            -1 if lim is None else lim,
            off,
        )
        found = await self._readers.run(lambda c: c.execute(_LIST_BOTS, params).fetchall())
        return [rows.bot(r) for r in found]

    async def update_bot(self, bot: Bot) -> Bot:
        check_model(bot, Bot, "update_bot")
        key = str(bot.id)
        params = (
            bot.name, bot.slug, bot.description, bot.status.value, bot.category.value,
            json.dumps(bot.tags, ensure_ascii=False), bot.user_id, rows.ts(utc_now()), key,
        )  # fmt: skip

        def unit(conn: sqlite3.Connection) -> Bot:
            owner = conn.execute(_SLUG_OWNER, (bot.slug,)).fetchone()
            if owner is not None and owner[0] != key:
                raise ConflictError(f"another bot already has slug {bot.slug!r}")
            row = conn.execute(_UPDATE_BOT, params).fetchone()
            if row is None:
                raise NotFoundError(f"bot {bot.id} not found")
            return rows.bot(row)

        return await self._writer.run(unit)

    async def delete_bot(self, bot_id: uuid.UUID) -> None:
        key = str(check_id(bot_id, "bot_id"))

        def unit(conn: sqlite3.Connection) -> None:
            if conn.execute(_DELETE_BOT, (key,)).rowcount == 0:
                raise NotFoundError(f"bot {bot_id} not found")

        await self._writer.run(unit)

    async def save_soul(
        self, bot_id: uuid.UUID, content: str, *, message: str | None = None
    ) -> SoulVersion:
        key = check_id(bot_id, "bot_id")
        # Built once here so bad text is refused before the write queue sees it.
        draft = SoulVersion(
            bot_id=key, content=content, version=1, hash=soul_hash(content), message=message
        )

        def unit(conn: sqlite3.Connection) -> SoulVersion:
            row = conn.execute(
                _NEXT_SOUL_VERSION, (rows.ts(draft.created_at), str(key), str(key))
            ).fetchone()
            if row is None:
                raise NotFoundError(f"bot {bot_id} not found")
            saved = SoulVersion(
                id=draft.id, bot_id=key, content=content, version=row[0], hash=draft.hash,
                message=message, created_at=draft.created_at,
            )  # fmt: skip
            conn.execute(
                _INSERT_SOUL,
                (str(saved.id), str(key), content, saved.hash, saved.version, message,
                 rows.ts(saved.created_at)),
            )  # fmt: skip
            return saved

        return await self._writer.run(unit)

    async def get_soul(self, bot_id: uuid.UUID, version: int | None = None) -> SoulVersion | None:
        key = str(check_id(bot_id, "bot_id"))
        if version is None:
            row = await self._readers.run(lambda c: c.execute(_LATEST_SOUL, (key,)).fetchone())
        else:
            check_version(version)
            row = await self._readers.run(lambda c: c.execute(_GET_SOUL, (key, version)).fetchone())
        return None if row is None else rows.soul(row)

    async def list_soul_versions(self, bot_id: uuid.UUID) -> list[SoulVersion]:
        key = str(check_id(bot_id, "bot_id"))
        found = await self._readers.run(lambda c: c.execute(_LIST_SOULS, (key,)).fetchall())
        return [rows.soul(r) for r in found]
