"""BotRepository, once for every backend."""

from __future__ import annotations

import uuid

from boternity.backends.common import (
    check_enum,
    check_id,
    check_model,
    check_slug,
    check_version,
)
from boternity.backends.core.dialect import (
    NONE,
    VALUE,
    Dialect,
    Executor,
    Repository,
    Unit,
    missing,
)
from boternity.backends.core.tables import BOTS, SOULS, TAGS
from boternity.ids import utc_now
from boternity.models import Bot, BotCategory, BotStatus, SoulVersion, soul_hash


class BotCore(Repository):
    def __init__(self, executor: Executor, dialect: Dialect) -> None:
        super().__init__(executor, dialect)
        self._encode = dialect.encoder(BOTS)
        self._bot = dialect.decoder(BOTS)
        self._soul = dialect.decoder(SOULS)

    async def create_bot(self, bot: Bot) -> Bot:
        check_model(bot, Bot, "create_bot")
        params = self._encode(bot)

        def unit() -> Unit[Bot]:
            yield self._q.insert_bot, params, NONE
            return bot

        return await self._x.write(
            unit,
            conflicts={
                "bots.id": f"a bot with id {bot.id} already exists",
                "bots.slug": f"a bot with slug {bot.slug!r} already exists",
            },
        )

    async def get_bot(self, bot_id: uuid.UUID) -> Bot | None:
        return await self._get(self._q.get_bot, self._bot, self._id(bot_id, "bot_id"))

    async def get_bot_by_slug(self, slug: str) -> Bot | None:
        return await self._get(self._q.get_bot_by_slug, self._bot, check_slug(slug))

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
        params = (st and st.value, cat and cat.value, *self._page(limit, offset))
        return await self._all(self._q.list_bots, self._bot, *params, browse=True)

    async def update_bot(self, bot: Bot) -> Bot:
        check_model(bot, Bot, "update_bot")
        params = (
            bot.name, bot.slug, bot.description, bot.status.value, bot.category.value,
            self._d.adapter(TAGS)(bot.tags), bot.user_id, self._time(utc_now()), self._key(bot.id),
        )  # fmt: skip
        conflict = {"bots.slug": f"another bot already has slug {bot.slug!r}"}
        return await self._update(self._q.update_bot, params, self._bot, "bot", bot.id, conflict)

    async def delete_bot(self, bot_id: uuid.UUID) -> None:
        await self._delete(self._q.delete_bot, self._id(bot_id, "bot_id"), "bot", bot_id)

    async def save_soul(
        self, bot_id: uuid.UUID, content: str, *, message: str | None = None
    ) -> SoulVersion:
        bid = check_id(bot_id, "bot_id")
        # Built once here so bad text is refused before anything is written.
        draft = SoulVersion(
            bot_id=bid, content=content, version=1, hash=soul_hash(content), message=message
        )
        key, at = self._key(bid), self._time(draft.created_at)

        def unit() -> Unit[int]:
            # The first statement locks the bot row, so the second sees every version
            # committed before it and picks N+1.
            if (yield self._q.bump_soul_count, (key, at), VALUE) is None:
                raise missing("bot", bot_id)
            insert = (self._key(draft.id), key, content, draft.hash, message, at)
            version: int = yield self._q.insert_soul, insert, VALUE
            return version

        version = await self._x.write(unit, atomic=True)
        return SoulVersion(
            id=draft.id, bot_id=bid, content=content, version=version, hash=draft.hash,
            message=message, created_at=draft.created_at,
        )  # fmt: skip

    async def get_soul(self, bot_id: uuid.UUID, version: int | None = None) -> SoulVersion | None:
        key = self._id(bot_id, "bot_id")
        if version is None:
            return await self._get(self._q.latest_soul, self._soul, key)
        return await self._get(self._q.get_soul, self._soul, key, check_version(version))

    async def list_soul_versions(self, bot_id: uuid.UUID) -> list[SoulVersion]:
        key = self._id(bot_id, "bot_id")
        return await self._all(self._q.list_souls, self._soul, key, browse=True)
