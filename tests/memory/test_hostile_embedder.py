"""An application's Embedder may return anything: NaN or infinite numbers, vectors of another
length than it says, too many or too few vectors, no list at all. Each is an EmbeddingError
(typed, the cause chained): a hybrid search falls back to shared words with a notice, a
semantic one raises it, the backfill refuses or pauses and never stores such a vector nor
embeds the same memories over and over. On every backend."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest

from boternity import Store
from boternity.errors import EmbeddingDimensionError, EmbeddingError
from boternity.memory import EmbeddingBackfill, MemorySearch
from boternity.models import Bot, MemoryCategory, MemoryEntry

REPLIES: dict[str, Callable[[int], Any]] = {
    "nan": lambda n: [np.array([np.nan, 1, 0, 0], np.float32)] * n,
    "inf": lambda n: [[float("inf"), 1.0, 0.0, 0.0]] * n,
    "huge": lambda n: [[1e39, 1.0, 0.0, 0.0]] * n,  # past float32
    "too many": lambda n: [np.ones(4, np.float32)] * (n + 1),
    "too few": lambda n: [np.ones(4, np.float32)] * (n - 1),
    "another length": lambda n: [np.ones(7, np.float32)] * n,
    "varying lengths": lambda n: [np.ones(4 + i % 2, np.float32) for i in range(n)],
    "matrix rows": lambda n: [np.ones((2, 4), np.float32)] * n,
    "not numbers": lambda n: [[1.0, "x", 0.0, 0.0]] * n,
    "text": lambda n: "vectors",
    "none": lambda n: None,
}


class HostileEmbedder:
    name = "hostile"
    model = "hostile-model"
    dimension = 4

    def __init__(self, reply: str) -> None:
        self.reply = REPLIES[reply]

    async def embed(self, texts: Sequence[str]) -> Any:
        return self.reply(len(texts))

    async def aclose(self) -> None:
        pass


@pytest.mark.parametrize("reply", list(REPLIES))
async def test_a_hostile_embedder_is_an_embedding_error_everywhere(
    store: Store, bot: Bot, reply: str
) -> None:
    for i in range(3):
        await store.memory.save_memory(
            MemoryEntry(
                bot_id=bot.id, fact=f"Drinks tea {i}", category=MemoryCategory.FACT, importance=3
            )
        )
    embedder = HostileEmbedder(reply)
    report = await EmbeddingBackfill(store, embedder, batch=2).run(limit=50)
    assert report.embedded == 0  # nothing stored, nothing embedded twice
    assert report.refused == 3 or report.error is not None
    assert await store.memory.count_without_embedding(embedder.model) == 3
    if reply == "varying lengths":
        return  # one query is one vector: nothing varies
    search = MemorySearch(store, embedder)
    hybrid = await search.search(bot.id, "tea")
    assert (hybrid.mode, len(hybrid)) == ("text", 3)
    assert hybrid.notice is not None and "shared words" in hybrid.notice
    with pytest.raises(EmbeddingError) as caught:
        await search.search(bot.id, "tea", mode="semantic")
    if reply == "another length":
        assert isinstance(caught.value, EmbeddingDimensionError)
