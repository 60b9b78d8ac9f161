"""read_url: browse reads may use a replica; anything a write depends on reads the primary."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from boternity import open_store
from boternity.models import (
    Bot,
    ChatMessage,
    ChatSession,
    MemoryCategory,
    MemoryEntry,
    MessageRole,
)
from tests.pg import fresh_postgres_database

pytestmark = pytest.mark.postgres


@pytest.fixture
def other_pg_url(admin_url: str) -> Iterator[str]:
    with fresh_postgres_database(admin_url) as url:
        yield url


async def test_browse_reads_go_to_read_url_and_the_rest_to_the_primary(
    pg_url: str, other_pg_url: str
) -> None:
    # The "replica" is a different database, so where each read went is visible.
    async with open_store(pg_url, read_url=other_pg_url) as store:
        bot = await store.bots.create_bot(Bot(name="Primary only"))
        session = await store.chat.create_session(ChatSession(bot_id=bot.id, model="m"))
        await store.chat.save_message(
            ChatMessage(session_id=session.id, role=MessageRole.USER, content="x")
        )

        fetched = await store.bots.get_bot(bot.id)
        assert fetched is not None and fetched.conversation_count == 1
        assert await store.bots.get_bot_by_slug(bot.slug) == fetched
        assert await store.chat.get_session(session.id) is not None
        assert await store.chat.get_message_count(session.id) == 1
        assert len(await store.chat.get_recent_messages(session.id, 5)) == 1
        assert len(await store.chat.get_active_sessions(bot.id)) == 1

        assert await store.bots.list_bots() == []
        assert await store.chat.list_sessions(bot.id) == []
        assert await store.chat.get_messages(session.id) == []
        assert await store.chat.count_messages() == 0


async def test_read_url_on_the_same_server_reads_your_writes(pg_url: str) -> None:
    async with open_store(pg_url, read_url=pg_url, pool_size=2) as store:
        bot = await store.bots.create_bot(Bot(name="Mirror"))
        session = await store.chat.create_session(ChatSession(bot_id=bot.id, model="m"))
        saved = await store.chat.save_message(
            ChatMessage(session_id=session.id, role=MessageRole.USER, content="hello")
        )
        memory = await store.memory.save_memory(
            MemoryEntry(bot_id=bot.id, fact="likes tea", category=MemoryCategory.PREFERENCE,
                        importance=3, session_id=session.id, source_message_id=saved.id)
        )  # fmt: skip
        assert [b.id for b in await store.bots.list_bots()] == [bot.id]
        assert [s.id for s in await store.chat.list_sessions(bot.id)] == [session.id]
        assert await store.chat.get_messages(session.id) == [saved]
        assert await store.memory.get_memories(bot.id) == [memory]
        assert await store.memory.get_memories_by_session(session.id) == [memory]
