"""Finding a bot's memories by shared words, by meaning, or both.

    search = MemorySearch(store, embedder)  # embedder: None for text search only
    found = await search.search(bot.id, "what pets do I have?")  # hybrid by default
    for hit in found:
        print(hit.score, hit.memory.fact)

``text`` is the store's full-text search (FTS5 bm25 on SQLite, tsvector on PostgreSQL):
memories sharing any word with the query; ``semantic`` the exact cosine search over the
bot's vectors of the embedder's model; ``hybrid`` fuses the semantic ranking with a text
ranking (``hybrid_text``: the memories having *every* word of the query, then those
sharing some that have no vector yet) by reciprocal rank fusion (a memory scores
``1 / (rrf_k + rank)`` in each ranking it appears in, summed), so a memory found both ways
comes first and one found only one way still counts. (Counting every any-word match, the
words a question shares with other facts pushed its answer down: on the labelled recall
set, recall@5 fell from 52.7% by meaning alone to 48.4%.) Live memories only, unless
``include_superseded``. A memory without a vector of the model (not embedded yet, or the
embedder was down) is still found by text.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass, field
from typing import Literal, TypeVar, get_args

from boternity.embeddings.base import Embedder, check_reply
from boternity.errors import EmbeddingError, ValidationError
from boternity.models import MemoryEntry
from boternity.repositories import UserScope
from boternity.store import Store

T = TypeVar("T")

SearchMode = Literal["hybrid", "semantic", "text"]
SEARCH_MODES: tuple[SearchMode, ...] = get_args(SearchMode)
#: The usual reciprocal-rank-fusion constant: how much a first place outweighs a tenth.
RRF_K = 60
#: How many memories each ranking contributes to a hybrid search (at least ``limit``).
CANDIDATES = 50
MAX_LIMIT = 10_000


@dataclass(frozen=True, slots=True)
class MemoryHit:
    """A memory found, and why.

    ``score`` orders the hits: the fused score in ``hybrid``, the cosine similarity in
    ``semantic``, ``1 / (rrf_k + text_rank)`` in ``text``. ``text_rank`` and
    ``semantic_rank`` are 1-based places in each ranking (None: not in it); ``similarity``
    is the cosine similarity to the query (None when the semantic ranking did not run or
    did not reach this memory).
    """

    memory: MemoryEntry
    score: float
    text_rank: int | None = None
    semantic_rank: int | None = None
    similarity: float | None = None


@dataclass(frozen=True, slots=True)
class SearchResult:
    """The hits, best first; ``mode`` is the search that ran, and ``notice`` says why it is
    not the one asked for (hybrid without a usable embedder runs as text)."""

    hits: list[MemoryHit] = field(default_factory=list)
    mode: SearchMode = "text"
    notice: str | None = None

    def __iter__(self) -> Iterator[MemoryHit]:
        return iter(self.hits)

    def __len__(self) -> int:
        return len(self.hits)

    @property
    def memories(self) -> list[MemoryEntry]:
        return [h.memory for h in self.hits]


def check_mode(mode: object) -> SearchMode:
    for known in SEARCH_MODES:
        if mode == known:
            return known
    raise ValidationError(
        f"unknown search mode {mode!r} (choose one of: {', '.join(SEARCH_MODES)})"
    )


def query_text(query: str) -> str:
    """The query as an embedder accepts it: any string is a valid query, so a NUL or a lone
    surrogate (which no embedder takes) becomes a space or U+FFFD instead of an error."""
    cleaned = query.replace("\x00", " ")
    return cleaned.encode("utf-8", "replace").decode("utf-8")


def fuse(
    text: list[MemoryEntry], semantic: list[tuple[MemoryEntry, float]], *, rrf_k: int = RRF_K
) -> list[MemoryHit]:
    """Reciprocal rank fusion of a text ranking and a semantic one, best first. Ties go to
    the better text rank (a shared word is the sharper signal: a name, a number), then the
    closer by meaning, then id."""
    memories: dict[uuid.UUID, MemoryEntry] = {}
    text_ranks: dict[uuid.UUID, int] = {}
    semantic_ranks: dict[uuid.UUID, int] = {}
    similarity: dict[uuid.UUID, float] = {}
    for rank, m in enumerate(text, 1):
        memories.setdefault(m.id, m)
        text_ranks.setdefault(m.id, rank)
    for rank, (m, score) in enumerate(semantic, 1):
        memories.setdefault(m.id, m)
        semantic_ranks.setdefault(m.id, rank)
        similarity.setdefault(m.id, score)
    hits = []
    for memory_id, m in memories.items():
        t, s = text_ranks.get(memory_id), semantic_ranks.get(memory_id)
        score = (0.0 if t is None else 1 / (rrf_k + t)) + (0.0 if s is None else 1 / (rrf_k + s))
        hits.append(MemoryHit(m, score, t, s, similarity.get(memory_id)))
    hits.sort(
        key=lambda h: (
            -h.score,
            h.text_rank or len(text) + 1,
            -(h.similarity if h.similarity is not None else -2.0),
            str(h.memory.id),
        )
    )
    return hits


class MemorySearch:
    """Searches one store's memories; ``embedder`` (None: text only) embeds the queries,
    and its ``model`` picks which stored vectors are searched. The caller owns both."""

    def __init__(
        self,
        store: Store,
        embedder: Embedder | None = None,
        *,
        candidates: int = CANDIDATES,
        rrf_k: int = RRF_K,
    ) -> None:
        for name, value in (("candidates", candidates), ("rrf_k", rrf_k)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValidationError(f"{name} must be a positive integer, got {value!r}")
        self.store = store
        self.embedder = embedder
        self.candidates = candidates
        self.rrf_k = rrf_k

    async def search(
        self,
        bot_id: uuid.UUID,
        query: str,
        *,
        mode: SearchMode = "hybrid",
        limit: int = 10,
        include_superseded: bool = False,
        user_id: UserScope = None,
    ) -> SearchResult:
        """The bot's memories that best match ``query``, at most ``limit``, best first,
        among those a conversation with ``user_id`` sees (theirs and the bot's own; None, the
        default: the bot's own; ANY_USER: all, for admin listings): every ranking keeps
        that scope.

        ``semantic`` without an embedder, or when it fails, raises ``EmbeddingError``;
        ``hybrid`` then runs as ``text`` and says why in ``notice``.
        """
        mode = check_mode(mode)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= MAX_LIMIT:
            raise ValidationError(f"limit must be an int in 0..{MAX_LIMIT}, got {limit!r}")
        if not isinstance(query, str):
            raise ValidationError(f"query must be str, got {type(query).__name__}")
        if mode != "text" and self.embedder is None:
            if mode == "semantic":
                raise EmbeddingError(
                    "semantic search needs an embedder (install boternity[local], or set"
                    " OPENAI_API_KEY / OPENAI_BASE_URL)"
                )
            mode, notice = "text", "no embedder is configured: searching by shared words only"
            return await self._text_only(bot_id, query, limit, include_superseded, user_id, notice)
        if mode == "text" or not query_text(query).strip() or limit == 0:  # "\x00": no words
            return await self._text_only(
                bot_id, query, limit, include_superseded, user_id, None, mode
            )
        wanted = max(self.candidates, limit) if mode == "hybrid" else limit
        semantic = self._semantic(bot_id, query, wanted, include_superseded, user_id)
        if mode == "semantic":
            found = await semantic
            hits = [
                MemoryHit(m, score, None, rank, score) for rank, (m, score) in enumerate(found, 1)
            ]
            return SearchResult(hits, "semantic")
        assert self.embedder is not None
        text_task = hybrid_text(
            self.store,
            bot_id,
            query,
            self.embedder.model,
            limit=wanted,
            include_superseded=include_superseded,
            user_id=user_id,
            dimension=self.embedder.dimension,
        )
        text, by_meaning = await asyncio.gather(text_task, _or_error(semantic))
        if isinstance(by_meaning, EmbeddingError):
            notice = f"searching by shared words only: {by_meaning}"
            return await self._text_only(bot_id, query, limit, include_superseded, user_id, notice)
        return SearchResult(fuse(text, by_meaning, rrf_k=self.rrf_k)[:limit], "hybrid")

    async def _text_only(
        self,
        bot_id: uuid.UUID,
        query: str,
        limit: int,
        include_superseded: bool,
        user_id: UserScope,
        notice: str | None,
        mode: SearchMode = "text",
    ) -> SearchResult:
        found = await self.store.memory.search_memories(
            bot_id, query, user_id=user_id, limit=limit, include_superseded=include_superseded
        )
        return SearchResult(_ranked(found, self.rrf_k), mode, notice)

    async def _semantic(
        self,
        bot_id: uuid.UUID,
        query: str,
        limit: int,
        include_superseded: bool,
        user_id: UserScope,
    ) -> list[tuple[MemoryEntry, float]]:
        assert self.embedder is not None
        reply = await self.embedder.embed([query_text(query)])
        (vector,) = check_reply(self.embedder, reply, 1)
        return await self.store.memory.nearest_memories(
            bot_id,
            self.embedder.model,
            vector,
            user_id=user_id,
            limit=limit,
            include_superseded=include_superseded,
        )


async def hybrid_text(
    store: Store,
    bot_id: uuid.UUID,
    query: str,
    model: str,
    *,
    limit: int,
    include_superseded: bool = False,
    user_id: UserScope = None,
    dimension: int | None = None,
) -> list[MemoryEntry]:
    """The text ranking a hybrid search fuses (among what ``user_id`` sees), best first: the
    memories that have every word of the query, then those sharing only some that have no
    vector of ``model`` (of length ``dimension``, when known: a vector of another length is
    never searched), as meaning cannot speak for them, so shared words are all there is. A memory with a vector that
    shares only some words is left to the meaning ranking: such a word match is rarely the
    answer, and counted it pushes the answer down."""
    every, some = await asyncio.gather(
        store.memory.search_memories(
            bot_id,
            query,
            user_id=user_id,
            limit=limit,
            include_superseded=include_superseded,
            match_all=True,
        ),
        store.memory.search_memories(
            bot_id, query, user_id=user_id, limit=limit, include_superseded=include_superseded
        ),
    )
    seen = {m.id for m in every}
    rest = [m for m in some if m.id not in seen]
    if rest:
        ids = [m.id for m in rest]
        bare = await store.memory.without_embedding_among(model, ids, dimension=dimension)
        rest = [m for m in rest if m.id in bare]
    return every + rest


def _ranked(found: list[MemoryEntry], rrf_k: int) -> list[MemoryHit]:
    return [MemoryHit(m, 1 / (rrf_k + rank), rank) for rank, m in enumerate(found, 1)]


async def _or_error(work: Awaitable[T]) -> T | EmbeddingError:
    try:
        return await work
    except EmbeddingError as exc:
        return exc


async def search_memories(
    store: Store,
    bot_id: uuid.UUID,
    query: str,
    *,
    embedder: Embedder | None = None,
    mode: SearchMode = "hybrid",
    limit: int = 10,
    include_superseded: bool = False,
    user_id: UserScope = None,
) -> SearchResult:
    """``MemorySearch(store, embedder).search(...)`` in one call."""
    return await MemorySearch(store, embedder).search(
        bot_id,
        query,
        mode=mode,
        limit=limit,
        include_superseded=include_superseded,
        user_id=user_id,
    )
