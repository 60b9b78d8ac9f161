"""Memory vectors in the process: checking them, storing them as bytes, and the exact cosine
search over a bot's vectors that the core's ``nearest_memories`` runs.

A bot's vectors of one model are read once into a float32 matrix and kept (per store, so
per process) for the searches that follow. Before each search one value is read, the bot's
``memory_version``, which every change affecting its vectors raises in the change's own
transaction, whichever process made it. When it moved, only what changed since is read (the
embeddings stamped with a later version, the memories ``memory_changes`` lists after it)
and applied to the matrix; everything is read again only when much changed. numpy is
imported here only when vectors are used.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from boternity.errors import EmbeddingDimensionError, ValidationError
from boternity.models import MAX_EMBEDDING_DIMENSION, check_text
from boternity.repositories import ANY_USER, UserScope

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

MAX_DIMENSION = MAX_EMBEDDING_DIMENSION
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
        with np.errstate(over="ignore", invalid="ignore"):  # too large: inf, refused below
            array = np.asarray(vector, dtype=np.float32)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValidationError(f"{what} must be a list or array of numbers") from exc
    if array.ndim != 1 or not 1 <= array.size <= MAX_DIMENSION:
        raise ValidationError(
            f"{what} must be one row of 1..{MAX_DIMENSION} numbers, got shape {array.shape}"
        )
    if not np.isfinite(array).all():
        raise ValidationError(f"{what} holds a number that is not finite (or too large)")
    wide = array.astype(np.float64)  # squares of large float32 values overflow float32
    norm = float(np.linalg.norm(wide))
    return array if norm == 0 else (wide / norm).astype(np.float32)


def to_bytes(vector: NDArray[np.float32]) -> bytes:
    """Little-endian float32, whatever the machine."""
    return vector.astype("<f4", copy=False).tobytes()


class _Rows:
    """The rows of one bot's matrix, appended to in place: a matrix with spare capacity, the
    memory id of each row, each memory's current row, and each row's owner (the memory's
    user, as a code: 0 for none; a memory's user never changes). Readers see only the rows
    their ``BotVectors`` counts, so a later append never changes what they read."""

    def __init__(
        self, matrix: NDArray[np.float32], keys: list[Any], owners: Sequence[str | None]
    ) -> None:
        import numpy as np

        self.matrix = matrix
        self.keys = keys
        self.where = {k: i for i, k in enumerate(keys)}
        self.codes: dict[str | None, int] = {None: 0}
        self.owners = np.fromiter((self.code(o) for o in owners), np.int32, len(keys))
        self.lock = threading.Lock()

    def code(self, owner: str | None) -> int:
        return self.codes.setdefault(owner, len(self.codes))

    @property
    def filled(self) -> int:
        return len(self.keys)

    def append(self, key: Any, vector: NDArray[np.float32], owner: str | None) -> int:
        import numpy as np

        row = len(self.keys)
        if row == self.matrix.shape[0]:
            grown = np.empty((max(16, row * 2), self.matrix.shape[1]), np.float32)
            grown[:row] = self.matrix[:row]
            self.matrix = grown
        if row == self.owners.shape[0]:
            owners = np.zeros(max(16, row * 2), np.int32)
            owners[:row] = self.owners[:row]
            self.owners = owners
        self.matrix[row] = vector
        self.owners[row] = self.code(owner)
        self.keys.append(key)
        self.where[key] = row
        return row


@dataclass(eq=False, slots=True)
class BotVectors:
    """A bot's vectors of one model, as of ``version`` (its memory_version, read before the
    rows). Row ``i`` of ``matrix`` holds the vector of memory ``keys[i]`` (ids as the dialect
    binds them) when ``current[i]``; ``live[i]``: that memory is not superseded."""

    version: int
    rows: _Rows
    count: int
    current: NDArray[np.bool_]
    live: NDArray[np.bool_]

    @property
    def matrix(self) -> NDArray[np.float32]:
        return self.rows.matrix[: self.count]

    @property
    def keys(self) -> list[Any]:
        return self.rows.keys[: self.count]

    @property
    def dimension(self) -> int:
        return int(self.rows.matrix.shape[1])

    def candidates(self, include_superseded: bool, viewer: UserScope) -> NDArray[np.bool_]:
        """The rows a search may return: the one place that rule lives. Rows holding a
        memory's current vector, of live memories unless ``include_superseded``, that a
        conversation with ``viewer`` may see (repositories.visible, as an array: the memory
        is the bot's own or the viewer's; ANY_USER: every row)."""
        rows = self.current if include_superseded else self.current & self.live
        if viewer is ANY_USER:
            return rows
        owners = self.rows.owners[: self.count]
        seen: NDArray[np.bool_] = owners == 0
        if viewer in self.rows.codes:
            seen |= owners == self.rows.codes[viewer]
        return rows & seen

    def updated(
        self,
        version: int,
        vectors: Sequence[Sequence[Any]],
        changes: Sequence[Sequence[Any]],
    ) -> BotVectors | None:
        """These vectors brought up to ``version``: ``vectors`` (memory id, bytes, live,
        user) were written since, ``changes`` (memory id, exists, live) are the memories superseded,
        restored or deleted since. Applying a change twice does no harm. None when reading
        everything again is better (many rows changed, or others appended meanwhile)."""
        import numpy as np

        size = self.dimension * 4
        with self.rows.lock:
            if (
                self.rows.filled != self.count
                or self.count == 0  # no dimension known yet
                or len(vectors) > max(1024, self.count // 4)
                # A vector of another length (the model changed its dimension): build()
                # decides again which length is searched, as a fresh process would.
                or any(len(blob) != size for _, blob, _, _ in vectors)
            ):
                return None
            room = self.count + len(vectors)
            current = np.zeros(room, np.bool_)
            current[: self.count] = self.current
            live = np.zeros(room, np.bool_)
            live[: self.count] = self.live
            for key, blob, alive, owner in vectors:
                old = self.rows.where.pop(key, None)
                if old is not None:
                    current[old] = False
                row = self.rows.append(key, np.frombuffer(blob, "<f4"), owner)
                current[row], live[row] = True, bool(alive)
            for key, exists, alive in changes:
                at = self.rows.where.get(key)
                if at is not None and not exists:
                    current[at] = False
                    del self.rows.where[key]
                elif at is not None:
                    live[at] = bool(alive)
            count = self.rows.filled
        if count - int(current[:count].sum()) > max(1024, count // 4):
            return None  # mostly replaced rows: read them again, compactly
        return BotVectors(version, self.rows, count, current[:count], live[:count])


def build(version: int, rows: Sequence[Sequence[Any]]) -> BotVectors:
    """Rows of (memory id, vector bytes, live, user) as one matrix. Vectors of another length than
    most of them (a model that changed its dimension under one name) are left out until
    they are embedded again."""
    import numpy as np

    sizes: dict[int, int] = {}
    for row in rows:
        sizes[len(row[1])] = sizes.get(len(row[1]), 0) + 1
    size = max(sizes, key=lambda s: (sizes[s], s)) if sizes else 0
    kept = [r for r in rows if len(r[1]) == size]
    flat = np.frombuffer(b"".join(bytes(r[1]) for r in kept), dtype="<f4")
    matrix = flat.astype(np.float32).reshape(len(kept), size // 4)
    live = np.fromiter((bool(r[2]) for r in kept), np.bool_, len(kept))
    current = np.ones(len(kept), np.bool_)
    rows_ = _Rows(matrix, [r[0] for r in kept], [r[3] for r in kept])
    return BotVectors(version, rows_, len(kept), current, live)


def nearest(
    vectors: BotVectors,
    query: NDArray[np.float32],
    limit: int,
    include_superseded: bool,
    viewer: UserScope,
) -> list[tuple[int, float]]:
    """(row, cosine similarity) of the ``limit`` candidates (for ``viewer``) closest to
    ``query``, closest first."""
    import numpy as np

    allowed = vectors.candidates(include_superseded, viewer)
    if limit == 0 or not allowed.any():
        return []
    if query.shape[0] != vectors.dimension:
        raise EmbeddingDimensionError(
            f"the query vector has dimension {query.shape[0]}, the stored vectors of this"
            f" model {vectors.dimension}: re-embed the memories ('bnity memories reembed')"
        )
    # numpy's own loop, not BLAS: OpenBLAS would start threads that keep spinning after the
    # product, taking the CPU from the database threads (x10 on a busy 2-core machine).
    scores = np.einsum("ij,j->i", vectors.matrix, query)
    # A stored vector that is not numbers (NaN bytes written past save_embeddings) is never
    # a hit: a NaN similarity would sort anywhere and is not valid JSON.
    allowed = allowed & np.isfinite(scores)
    total = int(allowed.sum())
    if total == 0:
        return []
    scores[~allowed] = -np.inf
    count = min(limit, total)
    if count < scores.shape[0]:
        top = np.argpartition(-scores, count - 1)[:count]
    else:
        top = np.arange(scores.shape[0])
    top = top[np.argsort(-scores[top], kind="stable")][:count]
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

    def latest(self, key: tuple[Any, str]) -> BotVectors | None:
        """The entry held, whatever its version (to bring up to date)."""
        return self._entries.get(key)

    def put(self, key: tuple[Any, str], entry: BotVectors) -> None:
        current = self._entries.get(key)
        if current is not None and current.version > entry.version:
            return  # a newer load finished first
        self._entries[key] = entry
        self._entries.move_to_end(key)
        total = sum(e.rows.matrix.nbytes for e in self._entries.values())
        while total > self.budget and len(self._entries) > 1:
            _, dropped = self._entries.popitem(last=False)
            total -= dropped.rows.matrix.nbytes

    def clear(self) -> None:
        self._entries.clear()
