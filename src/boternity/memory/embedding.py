"""Embedding memories that have no vector of the embedder's model, in batches, off the chat
path: the extraction worker runs it after each pass (so memories from extraction,
``remember`` and supersession are all embedded the same way), and ``bnity memories reembed``
runs it to the end after a model change.

Nothing waits for it and nothing is lost when it fails: a memory without a vector is still
found by text, and stays listed by ``memories_without_embedding`` until a later run embeds
it. After an outage the next runs wait (exponential backoff) before asking again.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from boternity.embeddings.base import Embedder, check_reply
from boternity.errors import (
    EmbeddingDimensionError,
    EmbeddingError,
    EmbeddingUnavailableError,
    ValidationError,
)
from boternity.ids import utc_now
from boternity.models import MemoryEntry
from boternity.store import Store

log = logging.getLogger(__name__)

BATCH = 256
#: Batches per listing of the memories that lack a vector.
PAGE = 8
#: Errors of the embedder, not of a fact: the run stops and backs off. An outage, or vectors
#: of another length than the model's (a server serving another model under the name): trying
#: each fact alone would only repeat the request, and mark good facts refused.
_PAUSES = (EmbeddingUnavailableError, EmbeddingDimensionError)
#: Facts an embedder refused on their own (not an outage) are skipped by this process;
#: past this many the run stops instead (something is wrong with the embedder, not a fact).
MAX_REFUSED = 1_000


@dataclass(slots=True)
class EmbeddingReport:
    """What one run did: memories embedded, memories the embedder refused (skipped until
    the process restarts), and the error that stopped it early (an outage), if any."""

    embedded: int = 0
    refused: int = 0
    error: str | None = None
    #: True when the run did nothing because an earlier outage's backoff has not run out.
    waiting: bool = False


class EmbeddingBackfill:
    """Embeds a store's memories that have no vector of ``embedder.model``, live ones first."""

    def __init__(
        self,
        store: Store,
        embedder: Embedder,
        *,
        batch: int = BATCH,
        backoff_base: timedelta = timedelta(seconds=30),
        backoff_cap: timedelta = timedelta(minutes=30),
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ValidationError(f"batch must be a positive integer, got {batch!r}")
        self.store = store
        self.embedder = embedder
        self.batch = batch
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.clock = clock
        self._refused: set[uuid.UUID] = set()
        self._outages = 0
        self._resume_at: datetime | None = None

    @property
    def paused(self) -> bool:
        """Whether an outage's backoff is running: embedding waits until it has."""
        return self._resume_at is not None and self.clock() < self._resume_at

    async def run(
        self,
        *,
        bot_id: uuid.UUID | None = None,
        limit: int | None = None,
        wait: bool = True,
        on_batch: Callable[[int], None] | None = None,
    ) -> EmbeddingReport:
        """Embed up to ``limit`` memories (all when None) of one bot or of every bot.

        With ``wait`` (the worker) a run during an outage's backoff does nothing; without it
        (a command the user started) it tries at once. ``on_batch(n)`` is called after each
        batch is stored with how many memories it held (for a progress bar).
        """
        from boternity.memory.worker import backoff_delay

        report = EmbeddingReport()
        if wait and self.paused:
            report.waiting = True
            return report
        model = self.embedder.model
        done = 0
        while limit is None or done < limit:
            # Listing what lacks a vector reads every memory of the bot (or of all bots):
            # one listing serves several batches.
            size = self.batch * PAGE if limit is None else min(self.batch * PAGE, limit - done)
            # A vector of another length than the embedder's counts as none: after the model
            # changed its dimension under one name, the old vectors are embedded again.
            listed = await self.store.memory.memories_without_embedding(
                model,
                bot_id=bot_id,
                limit=size + len(self._refused),
                dimension=self.embedder.dimension,
            )
            page = [m for m in listed if m.id not in self._refused][:size]
            if not page:
                break
            for start in range(0, len(page), self.batch):
                batch = page[start : start + self.batch]
                try:
                    stored = await self._embed(batch, report)
                except _PAUSES as exc:
                    self._outages += 1
                    delay = backoff_delay(
                        self._outages, base=self.backoff_base, cap=self.backoff_cap
                    )
                    self._resume_at = self.clock() + delay
                    report.error = str(exc)
                    log.warning("embedding memories paused for %s: %s", delay, exc)
                    return report
                self._outages, self._resume_at = 0, None
                done += len(batch)
                report.embedded += stored
                if on_batch is not None:
                    on_batch(len(batch))
                if len(self._refused) >= MAX_REFUSED:
                    report.error = f"the embedder refused {len(self._refused)} memories; stopping"
                    return report
        return report

    async def _embed(self, batch: list[MemoryEntry], report: EmbeddingReport) -> int:
        """Embed and store one batch; a batch the embedder refuses (not an outage) is tried
        one memory at a time, so one fact it cannot take does not hold back the others. So
        is a batch whose vectors the store refuses (an ``Embedder`` of the application's
        returning NaN, too many numbers, or a vector too few)."""
        try:
            reply = await self.embedder.embed([m.fact for m in batch])
            vectors = check_reply(self.embedder, reply, len(batch))
            pairs = [(m.id, v) for m, v in zip(batch, vectors, strict=True)]
            return await self.store.memory.save_embeddings(self.embedder.model, pairs)
        except _PAUSES:
            raise
        except (EmbeddingError, ValidationError) as exc:
            if len(batch) == 1:
                self._refused.add(batch[0].id)
                report.refused += 1
                log.warning("memory %s cannot be embedded: %s", batch[0].id, exc)
                return 0
            stored = 0
            for memory in batch:
                stored += await self._embed([memory], report)
            return stored
