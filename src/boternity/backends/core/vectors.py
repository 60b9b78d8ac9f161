"""Memory vectors in the process: checking them, storing them as bytes, and the exact cosine
search over a bot's vectors that the core's ``nearest_memories`` runs.

A bot's vectors of one model are read once into a float32 matrix and kept (per store, so
per process) for the searches that follow. Before each search one value is read, the bot's
``memory_version``, which every change to its memories or their embeddings raises in the
change's own transaction, whichever process made it; the matrix is read again only when
that value moved. numpy is imported here only when vectors are used.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from boternity.errors import EmbeddingDimensionError, ValidationError
from boternity.models import check_text

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

#: The longest vector stored (the schema's CHECK says the same); OpenAI's largest is 3072.
MAX_DIMENSION = 16_384
MAX_MODEL_NAME = 200
#: What the cached matrices of one store may hold together; the one in use is always kept.
CACHE_BYTES = 1 << 30
#: Above this many floats a search or a load runs in a worker thread, off the event loop.
THREAD_FLOATS = 1 << 20


def check_embedding_model(model: object) -> str:
    if not isinstance(model, str):
        raise ValidationError(f"embedding model must be str, got {type(model).__name__}")
    check_text(model, "embedding model")
    if not model.strip() or len(model) > MAX_MODEL_NAME:
        raise ValidationError(
            f"embedding model must be 1..{MAX_MODEL_NAME} characters (not blank), got {len(model)}"
        )
    return model


def check_vector(vector: object, what: str = "vector") -> NDArray[np.float32]:
    """``vector`` as a 1-D float32 array of unit length (a zero vector stays zero), refused
    with ``ValidationError`` unless it is a non-empty list of finite numbers."""
    import numpy as np

    if isinstance(vector, str | bytes):
        raise ValidationError(f"{what} must be a list or array of numbers, not text")
    try:
        array = np.asarray(vector, dtype=np.float32)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValidationError(f"{what} must be a list or array of numbers") from exc
    if array.ndim != 1 or not 1 <= array.size <= MAX_DIMENSION:
        raise ValidationError(
            f"{what} must be one row of 1..{MAX_DIMENSION} numbers, got shape {array.shape}"
        )
    if not np.isfinite(array).all():
        raise ValidationError(f"{what} holds a number that is not finite (or too large)")
    norm = float(np.linalg.norm(array))
    if norm == 0 or not math.isfinite(norm):
        return array
    return (array / norm).astype(np.float32)


def to_bytes(vector: NDArray[np.float32]) -> bytes:
    """Little-endian float32, whatever the machine."""
    return vector.astype("<f4", copy=False).tobytes()


@dataclass(eq=False, slots=True)
class BotVectors:
    """A bot's vectors of one model: row ``i`` of ``matrix`` (unit rows) is memory
    ``keys[i]`` (as the dialect binds ids); the first ``live`` rows are its live memories.
    ``version`` is the bot's memory_version read before the rows were."""

    version: int
    keys: list[Any]
    matrix: NDArray[np.float32]
    live: int

    @property
    def dimension(self) -> int:
        return int(self.matrix.shape[1])

    def candidates(self, include_superseded: bool) -> NDArray[np.float32]:
        """The rows a search may return: the one place that rule lives. Live memories (the
        first rows) unless ``include_superseded``."""
        return self.matrix if include_superseded else self.matrix[: self.live]


def build(version: int, rows: Sequence[Sequence[Any]]) -> BotVectors:
    """Rows of (memory id, vector bytes, live) as one matrix, live rows first. Vectors of
    another length than most of them (a model that changed its dimension under one name)
    are left out until they are embedded again."""
    import numpy as np

    sizes: dict[int, int] = {}
    for row in rows:
        sizes[len(row[1])] = sizes.get(len(row[1]), 0) + 1
    size = max(sizes, key=lambda s: (sizes[s], s)) if sizes else 4
    ordered = sorted((r for r in rows if len(r[1]) == size), key=lambda r: not r[2])
    live = sum(1 for r in ordered if r[2])
    flat = np.frombuffer(b"".join(bytes(r[1]) for r in ordered), dtype="<f4")
    matrix = flat.astype(np.float32, copy=False).reshape(len(ordered), size // 4)
    return BotVectors(version, [r[0] for r in ordered], matrix, live)


def nearest(
    vectors: BotVectors, query: NDArray[np.float32], limit: int, include_superseded: bool
) -> list[tuple[int, float]]:
    """(row, cosine similarity) of the ``limit`` candidates closest to ``query``, closest
    first (ties: row order)."""
    import numpy as np

    if query.shape[0] != vectors.dimension:
        raise EmbeddingDimensionError(
            f"the query vector has dimension {query.shape[0]}, the stored vectors of this"
            f" model {vectors.dimension}: re-embed the memories ('bnity memories reembed')"
        )
    rows = vectors.candidates(include_superseded)
    if rows.shape[0] == 0 or limit == 0:
        return []
    scores = rows @ query
    count = min(limit, scores.shape[0])
    if count < scores.shape[0]:
        top = np.argpartition(-scores, count - 1)[:count]
    else:
        top = np.arange(scores.shape[0])
    top = top[np.lexsort((top, -scores[top]))]
    return [(int(i), float(scores[i])) for i in top]


class VectorCache:
    """Matrices by (bot key, model), least recently used dropped first past ``budget``
    bytes (the one just stored is always kept)."""

    def __init__(self, budget: int = CACHE_BYTES) -> None:
        self.budget = budget
        self._entries: OrderedDict[tuple[Any, str], BotVectors] = OrderedDict()

    def get(self, key: tuple[Any, str], version: int) -> BotVectors | None:
        entry = self._entries.get(key)
        if entry is None or entry.version != version:
            return None
        self._entries.move_to_end(key)
        return entry

    def put(self, key: tuple[Any, str], entry: BotVectors) -> None:
        current = self._entries.get(key)
        if current is not None and current.version > entry.version:
            return  # a newer load finished first
        self._entries[key] = entry
        self._entries.move_to_end(key)
        total = sum(e.matrix.nbytes for e in self._entries.values())
        while total > self.budget and len(self._entries) > 1:
            _, dropped = self._entries.popitem(last=False)
            total -= dropped.matrix.nbytes

    def clear(self) -> None:
        self._entries.clear()
