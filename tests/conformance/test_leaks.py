"""Opening and closing a store gives back every thread and file descriptor."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from boternity import open_store
from tests.conformance import factories as f

FD_DIR = Path("/proc/self/fd")


def _fds() -> int:
    return len(os.listdir(FD_DIR))


@pytest.mark.skipif(not FD_DIR.exists(), reason="needs /proc/self/fd")
async def test_open_close_cycles_leak_no_threads_or_fds(db_url: str) -> None:
    async with open_store(db_url) as store:  # first open creates and migrates
        await f.new_bot(store)
    threads, fds = threading.active_count(), _fds()
    for _ in range(10):
        async with open_store(db_url) as store:
            s = await f.new_session(store)
            await store.chat.save_message(f.message(s.id))
            assert await store.chat.get_message_count(s.id) == 1
    assert threading.active_count() <= threads
    assert _fds() <= fds
