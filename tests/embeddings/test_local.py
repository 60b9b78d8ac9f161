"""The ``local`` embedder: WordLlama from the installed wheel's own files, never downloaded."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from boternity.embeddings import Embedder, LocalEmbedder, local
from boternity.errors import EmbeddingError, ValidationError

PETS = "what pets do I have?"
CAT = "Ana's cat is called Miso"
BANK = "Ben works at a bank"


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to resolve a name or open a connection fails the test."""

    def refuse(*args: object, **kwargs: object) -> Any:
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


async def test_loads_offline_and_embeds_256_unit_float32_dimensions(no_network: None) -> None:
    async with LocalEmbedder() as embedder:
        assert isinstance(embedder, Embedder)
        assert embedder.name == "local"
        assert embedder.model == "wordllama/l2_supercat_256"
        assert embedder.dimension == 256
        vectors = await embedder.embed([CAT, BANK])
    assert len(vectors) == 2
    for vector in vectors:
        assert vector.dtype == np.float32 and vector.shape == (256,)
        assert float(np.linalg.norm(vector)) == pytest.approx(1.0, abs=1e-5)


async def test_deterministic_across_embedders_and_batches() -> None:
    texts = [CAT, BANK, PETS, "Miso likes tuna", "Ana lives in Lisbon"]
    whole = await LocalEmbedder().embed(texts)
    again = await LocalEmbedder(batch_size=2).embed(texts)
    one_by_one = [(await LocalEmbedder().embed([t]))[0] for t in texts]
    for a, b, c in zip(whole, again, one_by_one, strict=True):
        assert np.array_equal(a, b)
        assert np.allclose(a, c, atol=1e-6)


async def test_paraphrases_are_closer_than_unrelated_facts() -> None:
    pets, cat, bank = await LocalEmbedder().embed([PETS, CAT, BANK])
    assert pets @ cat > pets @ bank
    work, cat, bank = await LocalEmbedder().embed(["where do I work?", CAT, BANK])
    assert work @ bank > work @ cat


async def test_empty_input_and_bad_texts() -> None:
    embedder = LocalEmbedder()
    assert await embedder.embed([]) == []
    for texts, words in (("a string", "single string"), ([""], "empty"), (["\x00"], "NUL")):
        with pytest.raises(ValidationError, match=words):
            await embedder.embed(texts)
    with pytest.raises(ValidationError, match="lone surrogate"):
        await embedder.embed(["ok", "\udcff"])


async def test_embedding_runs_in_a_worker_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    in_worker: list[bool] = []
    real = asyncio.to_thread

    async def to_thread(func: Callable[..., Any], /, *args: Any) -> Any:
        def run() -> Any:
            in_worker.append(threading.current_thread() is not threading.main_thread())
            return func(*args)

        return await real(run)

    monkeypatch.setattr(asyncio, "to_thread", to_thread)
    await LocalEmbedder(batch_size=2).embed([CAT, BANK, PETS])
    assert in_worker == [True, True]  # one call per batch


async def test_the_loop_keeps_running_while_embedding() -> None:
    embedder = LocalEmbedder()
    await embedder.embed([CAT])  # loaded
    texts = [f"fact {i}: {CAT} and {BANK}" for i in range(20_000)]
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    ticker = asyncio.create_task(tick())
    started = time.perf_counter()
    await embedder.embed(texts)
    elapsed = time.perf_counter() - started
    ticker.cancel()
    # Not a strict timing bound: only that the loop ran between batches while embedding.
    assert ticks >= 3, (ticks, elapsed)


def test_unknown_model_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"unknown local embedding model 'other'"):
        LocalEmbedder("other")
    with pytest.raises(ValidationError, match="batch_size"):
        LocalEmbedder(batch_size=0)


def test_without_the_extra_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name == "wordllama" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    assert not local.available()
    with pytest.raises(EmbeddingError, match=r"pip install 'boternity\[local\]'"):
        LocalEmbedder()


async def test_a_damaged_model_file_is_an_embedding_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    files = local.model_files()
    weights = tmp_path / "weights.safetensors"
    weights.write_bytes(b"not a safetensors file")
    monkeypatch.setattr(local, "model_files", lambda: local.ModelFiles(weights, files.tokenizer))
    with pytest.raises(EmbeddingError, match="cannot read the local embedding model") as caught:
        await LocalEmbedder().embed([CAT])
    assert caught.value.__cause__ is not None and not caught.value.retryable


def test_the_wheel_ships_the_files() -> None:
    files = local.model_files()
    assert files.weights.stat().st_size > 10_000_000  # 32000 tokens x 256 float16
    assert json.loads(files.tokenizer.read_text(encoding="utf-8"))["model"]


# Importing wordllama configures the root logger, so these run in a child process.
_CHILD = """
import asyncio, json, logging, socket, sys
def refuse(*args, **kwargs):
    raise SystemExit(f"network access attempted: {args!r}")
socket.socket.connect = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
from boternity.embeddings import LocalEmbedder
texts = json.loads(sys.argv[1])
vectors = asyncio.run(LocalEmbedder().embed(texts))
report = {
    "imported": [m for m in ("wordllama", "requests", "huggingface_hub") if m in sys.modules],
    "root_handlers": len(logging.getLogger().handlers),
}
if len(sys.argv) > 2:  # compare with WordLlama's own inference on the same files
    import numpy as np
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer
    from boternity.embeddings.local import model_files
    from wordllama import WordLlamaInference
    files = model_files()
    table = load_file(str(files.weights))["embedding.weight"]
    theirs = WordLlamaInference(table, Tokenizer.from_file(str(files.tokenizer))).embed(
        texts, norm=True
    )
    report["max_difference"] = float(np.abs(np.stack(vectors) - theirs).max())
print(json.dumps(report))
"""


def _child(tmp_path: Path, *extra: str) -> dict[str, Any]:
    env = {
        **os.environ,
        "HOME": str(tmp_path),  # no ~/.cache/wordllama to fall back on
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "HF_HUB_OFFLINE": "1",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
    }
    texts = json.dumps([CAT, BANK, PETS, "Miso", "a much longer fact " * 30])
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, texts, *extra],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


@pytest.mark.slow
def test_a_fresh_process_loads_offline_without_importing_wordllama(tmp_path: Path) -> None:
    report = _child(tmp_path)
    assert report == {"imported": [], "root_handlers": 0}
    assert not (tmp_path / ".cache").exists() and not (tmp_path / "cache").exists()


@pytest.mark.slow
def test_the_same_vectors_as_wordllamas_own_inference(tmp_path: Path) -> None:
    report = _child(tmp_path, "compare")
    assert report["max_difference"] < 1e-5
