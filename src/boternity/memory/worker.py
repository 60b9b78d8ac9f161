"""The extraction queue worker: claim due jobs, ask the model, save or back off.

Jobs are rows (``pending_memory_extractions``), so an LLM outage or a killed worker delays
memories but never loses them: a claim is a lease, a failure records its error and schedules
the next attempt with exponential backoff, and after the maximum attempts the job stays in
the table, exhausted, until someone retries it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from boternity.embeddings.base import Embedder, Vector
from boternity.errors import BoternityError, NotFoundError, ValidationError
from boternity.ids import utc_now
from boternity.llm.base import LlmProvider
from boternity.llm.select import extraction_model
from boternity.memory.embedding import EmbeddingBackfill, EmbeddingReport
from boternity.memory.extraction import (
    MAX_FACTS_PER_JOB,
    build_request,
    parse_reply,
    plan_memories,
    short_ids,
)
from boternity.memory.similar import Similar
from boternity.memory.similar import duplicate_threshold as check_threshold
from boternity.models import MAX_EXTRACTION_ATTEMPTS, PendingExtraction
from boternity.store import Store

log = logging.getLogger(__name__)

MAX_KNOWN_MEMORIES = 200


def backoff_delay(attempts: int, *, base: timedelta, cap: timedelta) -> timedelta:
    """base · 2^(attempts − 1), capped: 30 s, 60 s, 120 s, … with the defaults."""
    exponent = max(attempts - 1, 0)
    if exponent > 40:  # 2**40 · base is beyond any sane cap already
        return cap
    return min(base * (1 << exponent), cap)


@dataclass(slots=True)
class WorkerReport:
    claimed: int = 0
    completed: int = 0
    failed: int = 0
    exhausted: int = 0
    memories_saved: int = 0
    superseded: int = 0
    dropped: int = 0  # new facts beyond what one job may save (MAX_FACTS_PER_JOB)
    #: Facts not saved because they repeat a live memory (the same fact, or the same by
    #: meaning with an embedder): each is recorded in that memory's history.
    repeated: int = 0
    errors: list[str] = field(default_factory=list)
    #: The embedding run after the jobs (None without an embedder); its ``embedded`` also
    #: counts the memories embedded as their job saved them.
    embedding: EmbeddingReport | None = None


@dataclass(frozen=True, slots=True)
class JobResult:
    saved: int = 0
    superseded: int = 0
    dropped: int = 0
    embedded: int = 0  # of the memories saved, those whose vectors were stored with them
    repeated: int = 0  # facts not saved: they repeat a live memory (recorded in its history)


class ExtractionWorker:
    """Processes the extraction queue; with an ``embedder``, each pass then embeds memories
    that have no vector of its model (at most ``embed_per_pass``), so recall by meaning
    never waits on the chat path and an embedder outage delays only the vectors.

    With an embedder, a job shows the model the live memories closest in meaning to its
    messages (not the most important ones), and a new fact whose cosine similarity with a
    live memory is at least ``duplicate_threshold`` (else ``$BOTERNITY_DUPLICATE_THRESHOLD``,
    else 0.94) repeats it and is not saved; the memories it saves are embedded at once."""

    def __init__(
        self,
        store: Store,
        provider: LlmProvider,
        *,
        embedder: Embedder | None = None,
        embed_per_pass: int | None = 4096,
        duplicate_threshold: float | None = None,
        model: str | None = None,
        lease: timedelta = timedelta(minutes=5),
        backoff_base: timedelta = timedelta(seconds=30),
        backoff_cap: timedelta = timedelta(hours=1),
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        if backoff_base <= timedelta(0) or backoff_cap < backoff_base:
            raise ValidationError("backoff_base must be positive and backoff_cap >= backoff_base")
        self.store = store
        self.provider = provider
        # The model: ``model``, else $BOTERNITY_EXTRACTION_MODEL, else the provider's default.
        self.model = (model or "").strip() or extraction_model() or provider.default_model
        self.lease = lease
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.clock = clock
        self.embed_per_pass = embed_per_pass
        self.embedding = (
            None
            if embedder is None
            else EmbeddingBackfill(
                store, embedder, backoff_base=backoff_base, backoff_cap=backoff_cap, clock=clock
            )
        )
        threshold = check_threshold(duplicate_threshold)
        self.similar = None if self.embedding is None else Similar(store, self.embedding, threshold)

    async def run_once(
        self,
        *,
        limit: int | None = None,
        bot_id: uuid.UUID | None = None,
        batch: int = 5,
        on_job: Callable[[PendingExtraction, str], None] | None = None,
    ) -> WorkerReport:
        """Process due jobs until none are due (or ``limit`` were claimed).

        ``on_job(job, outcome)`` is called after each job ("completed", "failed",
        "exhausted" or "gone"), e.g. to drive a progress bar.
        """
        report = WorkerReport()
        if self.embedding is not None:  # counts the memories embedded as jobs save them
            report.embedding = EmbeddingReport()
        while limit is None or report.claimed < limit:
            take = batch if limit is None else min(batch, limit - report.claimed)
            jobs = await self.store.memory.claim_pending_extractions(
                limit=take, lease=self.lease, now=self.clock(), bot_id=bot_id
            )
            if not jobs:
                break
            report.claimed += len(jobs)
            for index, job in enumerate(jobs):
                try:
                    outcome = await self._process(job, report)
                except asyncio.CancelledError:
                    # Interrupted (Ctrl+C, shutdown): the claims we still hold are handed
                    # back unused, so `bnity queue run` right after finds them due.
                    await asyncio.shield(self._release(jobs[index:]))
                    raise
                if on_job is not None:
                    on_job(job, outcome)
        if self.embedding is not None and report.embedding is not None:
            with_jobs = report.embedding.embedded
            report.embedding = await self.embedding.run(bot_id=bot_id, limit=self.embed_per_pass)
            report.embedding.embedded += with_jobs
        return report

    async def _release(self, jobs: list[PendingExtraction]) -> None:
        """Give back claims an interrupted pass did not finish: due now, and the attempt
        they took is returned (an interruption is not a failure of the job)."""
        now = self.clock()
        for job in jobs:
            released = dataclasses.replace(
                job, attempt_count=max(job.attempt_count - 1, 0), next_attempt_at=now
            )
            try:
                await self.store.memory.update_pending_extraction(released)
            except NotFoundError:
                pass  # it completed just before the interruption
            except BoternityError as exc:  # the lease still runs out in time
                log.warning("could not release extraction job %s: %s", job.id, exc)

    async def run_forever(self, *, interval: float = 5.0, bot_id: uuid.UUID | None = None) -> None:
        """Keep draining due jobs; for a background task owned by a long-running process."""
        while True:
            try:
                await self.run_once(bot_id=bot_id)
            except BoternityError as exc:  # the store is busy or gone for a moment: try later
                log.warning("extraction worker pass failed: %s", exc)
            except Exception:  # a bug must not silently end memory extraction for good
                log.exception("extraction worker pass failed unexpectedly; trying again later")
            await asyncio.sleep(interval)

    async def _process(self, job: PendingExtraction, report: WorkerReport) -> str:
        try:
            result = await self.extract(job)
        except NotFoundError as exc:
            # The session was deleted, or another worker finished the job after our lease
            # ran out: nothing to save, and saving again would duplicate.
            log.info("extraction job %s is gone: %s", job.id, exc)
            return "gone"
        except BoternityError as exc:
            return await self._record_failure(job, exc, report)
        except Exception as exc:
            # Whatever the model sent, the job must not stay claimed without its error (and
            # the other claimed jobs must still be processed).
            log.exception("extraction job %s failed unexpectedly", job.id)
            return await self._record_failure(job, exc, report)
        report.completed += 1
        report.memories_saved += result.saved
        report.superseded += result.superseded
        report.dropped += result.dropped
        report.repeated += result.repeated
        if report.embedding is not None:
            report.embedding.embedded += result.embedded
        return "completed"

    async def extract(self, job: PendingExtraction) -> JobResult:
        """Run one claimed job to completion: what it saved, superseded and dropped."""
        memory = self.store.memory
        if job.messages_start is not None and job.messages_end is not None:
            messages = await self.store.chat.get_messages(
                job.session_id,
                offset=job.messages_start - 1,
                limit=job.messages_end - job.messages_start + 1,
            )
        else:
            messages = await self.store.chat.get_messages(job.session_id)
        if not any(m.content.strip() for m in messages):
            await memory.complete_extraction(job.id, [])
            return JobResult()
        session = await self.store.chat.get_session(job.session_id)
        if session is None:
            raise NotFoundError(f"chat session {job.session_id} not found")
        # The session's user owns what is extracted, and the model only ever sees what a
        # conversation with that user may see: the memories closest in meaning to the
        # conversation, else the most important.
        user = session.user_id
        similar = self.similar
        shown = None if similar is None else await similar.known(job.bot_id, user, messages)
        if shown is None:
            shown = await memory.get_memories(job.bot_id, user_id=user, limit=MAX_KNOWN_MEMORIES)
        known = short_ids(shown)
        request = build_request(self.model, messages, known)
        completion = await self.provider.complete(request)
        facts = parse_reply(completion.text)
        meaning = None
        if similar is not None and facts:
            meaning = await similar.facts(job.bot_id, user, [f.fact for f in facts])
        plan = plan_memories(job, messages, known, facts, user_id=user, meaning=meaning)
        if plan.dropped:
            log.warning(
                "extraction job %s: saving the first %d new facts, dropped %d more",
                job.id,
                MAX_FACTS_PER_JOB,
                plan.dropped,
            )
        # The store skips facts saved meanwhile (by another worker): count what it kept. A
        # repeat is recorded in its memory's history, or saved if that memory is gone.
        saved = await memory.complete_extraction(
            job.id,
            [*plan.memories, *(new for new, _ in plan.repeated)],
            supersedes=plan.supersedes,
            repeats={new.id: old.id for new, old in plan.repeated},
        )
        kept = {m.id for m in saved}
        superseded = sum(1 for new in plan.supersedes if new in kept)
        embedded = await self._save_vectors(plan.vectors, kept)
        return JobResult(
            saved=len(saved),
            superseded=superseded,
            dropped=plan.dropped,
            embedded=embedded,
            repeated=sum(1 for new, _ in plan.repeated if new.id not in kept),
        )

    async def _save_vectors(self, vectors: dict[uuid.UUID, Vector], kept: set[uuid.UUID]) -> int:
        """Store the vectors made for the duplicate check with the memories saved, so the next
        job compares with them at once; on failure the embedding pass embeds them later."""
        pairs = [(memory_id, v) for memory_id, v in vectors.items() if memory_id in kept]
        if not pairs or self.embedding is None:
            return 0
        try:
            return await self.store.memory.save_embeddings(self.embedding.embedder.model, pairs)
        except BoternityError as exc:
            log.warning("could not store the vectors of new memories (embedded later): %s", exc)
            return 0

    async def _record_failure(
        self, job: PendingExtraction, exc: BaseException, report: WorkerReport
    ) -> str:
        now = self.clock()
        delay = backoff_delay(job.attempt_count, base=self.backoff_base, cap=self.backoff_cap)
        message = storable(f"{type(exc).__name__}: {exc}"[:2000])
        updated = dataclasses.replace(
            job, error_message=message, last_attempt_at=now, next_attempt_at=now + delay
        )
        try:
            await self.store.memory.update_pending_extraction(updated)
        except NotFoundError:
            return "gone"
        report.errors.append(message)
        if job.attempt_count >= MAX_EXTRACTION_ATTEMPTS:
            report.exhausted += 1
            log.warning(
                "extraction job %s exhausted after %d attempts: %s",
                job.id,
                job.attempt_count,
                message,
            )
            return "exhausted"
        report.failed += 1
        log.info(
            "extraction job %s failed (attempt %d), retry in %s: %s",
            job.id,
            job.attempt_count,
            delay,
            message,
        )
        return "failed"


def storable(text: str) -> str:
    """Text any backend can store: a NUL or a lone surrogate (from an error quoting the
    model) is written as its escape, so recording the error cannot fail."""
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")


async def retry_extraction(store: Store, job_id: uuid.UUID) -> PendingExtraction:
    """Make a failed or exhausted job due now with a fresh set of attempts."""
    job = await store.memory.get_pending_extraction(job_id)
    if job is None:
        raise NotFoundError(f"pending extraction {job_id} not found")
    return await store.memory.update_pending_extraction(
        dataclasses.replace(job, attempt_count=0, next_attempt_at=utc_now())
    )
