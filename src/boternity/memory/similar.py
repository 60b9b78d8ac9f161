"""What memory extraction asks the embedder, when the worker has one.

- The memories to show the model: the bot's live memories most similar to the range's
  messages (``KNOWN_BY_MEANING``, with short ids), not every memory, so ``supersedes`` can
  name the right one however many the bot has.
- Near-duplicates: each new fact's closest live memory; at or above the threshold (cosine
  similarity) the fact repeats that memory and is not saved again (its words go to that
  memory's history). Facts of one reply are not compared with each other: without a memory
  to record them in, a fact taken for a repeat of another would be lost.

The embedder never fails a job: without one, while it is down (the worker's embedding
backoff), or while no memory has a vector of its model, extraction does what it does
without one (the most important memories; duplicates by their text only).
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from boternity.embeddings.base import Vector, check_reply
from boternity.errors import EmbeddingError, ValidationError
from boternity.memory.embedding import EmbeddingBackfill
from boternity.models import ChatMessage, MemoryEntry, MessageRole
from boternity.store import Store

log = logging.getLogger(__name__)

#: How many memories the extraction request shows when they are chosen by meaning.
KNOWN_BY_MEANING = 20
#: The near-duplicate threshold (cosine similarity) when none is configured: the lowest that
#: flags no unrelated pair of the labelled set with the local embedder (precision 1.0,
#: recall 0.10; ``benchmarks/recall_eval.py``). WordLlama averages word vectors, so an update
#: ("a trip in April" / "a trip in November": 0.937) looks like a repeat: lower thresholds
#: find more rewordings but lose updates, and a lost memory costs more than a repeated one.
DUPLICATE_THRESHOLD = 0.94
ENV_DUPLICATE_THRESHOLD = "BOTERNITY_DUPLICATE_THRESHOLD"
#: The start of a long message is what is embedded (remote embedders limit their input).
MAX_EMBEDDED_CHARS = 2_000
#: The facts of one reply compared with the memories (a job saves at most 50 new facts;
#: those past this many are checked by their text only).
MAX_COMPARED_FACTS = 200


def duplicate_threshold(value: float | None = None, env: Mapping[str, str] | None = None) -> float:
    """``value``, else ``$BOTERNITY_DUPLICATE_THRESHOLD``, else ``DUPLICATE_THRESHOLD``: a
    cosine similarity in (0, 1] (``ValidationError`` otherwise)."""
    env = os.environ if env is None else env
    raw: object = value
    where = "duplicate_threshold"
    if value is None:
        text = env.get(ENV_DUPLICATE_THRESHOLD, "").strip()
        if not text:
            return DUPLICATE_THRESHOLD
        where = ENV_DUPLICATE_THRESHOLD
        try:
            raw = float(text)
        except ValueError:
            raw = text
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 < raw <= 1:
        raise ValidationError(
            f"{where} must be a cosine similarity above 0 and at most 1, got {raw!r}"
        )
    return float(raw)


@dataclass(frozen=True, slots=True)
class FactMeaning:
    """What the embedder says of a reply's facts, in the order given: each fact's vector,
    and the live memory closest to it with their cosine similarity (None: no memory has a
    vector of the model)."""

    vectors: list[Vector]
    nearest: list[tuple[MemoryEntry, float] | None]
    threshold: float

    def repeats(self, index: int) -> MemoryEntry | None:
        """The live memory fact ``index`` repeats (cosine similarity >= threshold); None
        also for a fact past those embedded (``MAX_COMPARED_FACTS``)."""
        found = self.nearest[index] if index < len(self.nearest) else None
        return found[0] if found is not None and found[1] >= self.threshold else None


class Similar:
    """The embedder's side of one worker's extraction: it embeds with the worker's embedding
    backfill's embedder, and does not while that backfill waits out an outage."""

    def __init__(self, store: Store, backfill: EmbeddingBackfill, threshold: float) -> None:
        self.store = store
        self.backfill = backfill
        self.threshold = threshold

    async def known(
        self, bot_id: uuid.UUID, user_id: str | None, messages: Sequence[ChatMessage]
    ) -> list[MemoryEntry] | None:
        """The live memories a conversation with ``user_id`` sees that are most similar to
        any of ``messages`` (each memory counted by its closest message), closest first, at
        most ``KNOWN_BY_MEANING``; None when meaning cannot say (no embedder to use, or no
        memory has a vector)."""
        texts = [
            m.content.strip()[:MAX_EMBEDDED_CHARS]
            for m in messages
            if m.role is not MessageRole.SYSTEM and m.content.strip()
        ]
        vectors = await self._embed(texts, "the conversation")
        if not vectors:
            return None
        best: dict[uuid.UUID, tuple[float, MemoryEntry]] = {}
        for vector in vectors:
            found = await self._nearest(bot_id, user_id, vector, KNOWN_BY_MEANING)
            if found is None:
                return None
            for memory, similarity in found:
                if memory.id not in best or similarity > best[memory.id][0]:
                    best[memory.id] = (similarity, memory)
        ranked = sorted(best.values(), key=lambda s: (-s[0], str(s[1].id)))
        return [memory for _, memory in ranked[:KNOWN_BY_MEANING]] or None

    async def facts(
        self, bot_id: uuid.UUID, user_id: str | None, facts: Sequence[str]
    ) -> FactMeaning | None:
        """Each fact's vector and closest live memory a conversation with ``user_id`` sees;
        None when the embedder cannot say."""
        vectors = await self._embed(list(facts[:MAX_COMPARED_FACTS]), "the extracted facts")
        if not vectors:
            return None
        nearest: list[tuple[MemoryEntry, float] | None] = []
        for vector in vectors:
            found = await self._nearest(bot_id, user_id, vector, 1)
            if found is None:
                return None
            nearest.append(found[0] if found else None)
        return FactMeaning(vectors, nearest, self.threshold)

    async def _nearest(
        self, bot_id: uuid.UUID, user_id: str | None, vector: Vector, limit: int
    ) -> list[tuple[MemoryEntry, float]] | None:
        """The closest live memories; None when the stored vectors cannot be compared with
        the embedder's (another dimension under the same model name)."""
        try:
            return await self.store.memory.nearest_memories(
                bot_id, self.backfill.embedder.model, vector, user_id=user_id, limit=limit
            )
        except EmbeddingError as exc:
            log.warning("cannot compare with the stored vectors: %s", exc)
            return None

    async def _embed(self, texts: list[str], what: str) -> list[Vector] | None:
        if not texts or self.backfill.paused:
            return None
        try:
            reply = await self.backfill.embedder.embed(texts)
            return check_reply(self.backfill.embedder, reply, len(texts))
        except (EmbeddingError, ValidationError) as exc:
            log.warning("cannot embed %s (extraction goes on without meaning): %s", what, exc)
            return None
