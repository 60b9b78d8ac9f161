"""A bot in a fresh store on every backend, for the framework adapters."""

from __future__ import annotations

import pytest

from boternity import Store
from boternity.models import Bot


@pytest.fixture
async def bot(store: Store) -> Bot:
    return await store.bots.create_bot(Bot(name="Luna"))
