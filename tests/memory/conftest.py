from __future__ import annotations

import pytest

from boternity import Store
from boternity.embeddings import LocalEmbedder
from boternity.models import Bot


@pytest.fixture
async def bot(store: Store) -> Bot:
    return await store.bots.create_bot(Bot(name="Memo", description="Remembers things"))


@pytest.fixture(scope="session")
def local_embedder() -> LocalEmbedder:
    """The real offline embedder (WordLlama), its model read once for the whole run. Not
    closed: it holds no connection, only the model in memory."""
    return LocalEmbedder()
