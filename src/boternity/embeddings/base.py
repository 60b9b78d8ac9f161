"""The embedder contract: the ``Embedder`` Protocol, the ``Vector`` type, and the rules every
embedder shares (which texts it accepts, unit-length vectors, batches)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Protocol, TypeAlias, runtime_checkable

from boternity.errors import EmbeddingDimensionError, EmbeddingError, ValidationError
from boternity.models import check_text, check_vector

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

#: One embedding: a 1-D numpy array of float32, of unit length (so the cosine similarity of two
#: vectors is their dot product). numpy is imported only when vectors are made.
Vector: TypeAlias = "NDArray[np.float32]"


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into vectors whose cosine similarity says how close their meanings are.

    ``name`` is the kind of embedder (``local``, ``openai``), ``model`` the model whose
    vectors it makes (stored with each vector: vectors of different models never mix), and
    ``dimension`` their length (None for a remote model not known in advance, until its first
    reply fixes it). ``embed`` returns one unit-length vector per text, in the order given,
    working in batches; ``[]`` for ``[]``. Texts must be non-empty strings without NUL or lone
    surrogates (``ValidationError`` before any work). Failures raise the ``EmbeddingError``
    tree of ``boternity.errors``. Close it with ``await embedder.aclose()`` or ``async with``.
    """

    @property
    def name(self) -> str: ...

    @property
    def model(self) -> str: ...

    @property
    def dimension(self) -> int | None: ...

    async def embed(self, texts: Sequence[str]) -> list[Vector]: ...

    async def aclose(self) -> None: ...


def check_texts(texts: Sequence[str]) -> list[str]:
    """``texts`` as a list, refused (``ValidationError``) unless every one is a non-empty
    string that every backend can store."""
    if isinstance(texts, str | bytes):
        raise ValidationError("embed() takes a list of texts, not a single string")
    checked = list(texts)
    for position, text in enumerate(checked):
        if not isinstance(text, str):
            raise ValidationError(
                f"text {position} to embed: expected str, got {type(text).__name__}"
            )
        if not text.strip():
            raise ValidationError(f"text {position} to embed is empty")
        check_text(text, f"text {position} to embed")
    return checked


def batches(texts: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(texts), size):
        yield texts[start : start + size]


def check_batch_size(batch_size: int) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValidationError(f"batch_size must be a positive integer, got {batch_size!r}")
    return batch_size


def unit_rows(matrix: NDArray[np.floating]) -> list[Vector]:
    """The rows of a 2-D matrix of finite numbers scaled to unit length, as float32 (an
    all-zero row stays zero). Scaled in float64: the squares of large float32 values
    overflow float32, which would turn a valid vector into zeros."""
    import numpy as np

    wide = matrix.astype(np.float64, copy=False)
    norms = np.linalg.norm(wide, axis=1, keepdims=True)
    return list((wide / np.where(norms == 0, 1, norms)).astype(np.float32))


def check_reply(embedder: Embedder, reply: object, count: int) -> list[Vector]:
    """What ``embedder`` returned for ``count`` texts, as unit-length float32 vectors; an
    ``EmbeddingError`` when it is not that (an application's ``Embedder`` may return
    anything): not a list, another number of vectors, a vector that is not one row of
    finite numbers (the ``ValidationError`` chained), and ``EmbeddingDimensionError`` for
    vectors of varying lengths or of another length than the embedder's ``dimension``."""
    name = getattr(embedder, "name", None)
    try:
        if isinstance(reply, str | bytes):
            raise TypeError("text")
        vectors = list(reply)  # type: ignore[call-overload]
    except TypeError as exc:
        raise EmbeddingError(
            f"the embedder returned {type(reply).__name__}, not a list of vectors",
            embedder=name,
        ) from exc
    if len(vectors) != count:
        raise EmbeddingError(
            f"the embedder returned {len(vectors)} vectors for {count} texts", embedder=name
        )
    try:
        checked = [check_vector(v, f"vector {i} from the embedder") for i, v in enumerate(vectors)]
    except ValidationError as exc:
        raise EmbeddingError(str(exc), embedder=name) from exc
    lengths = {v.shape[0] for v in checked}
    dimension = embedder.dimension
    if len(lengths) > 1 or (dimension is not None and lengths and lengths != {dimension}):
        raise EmbeddingDimensionError(
            f"the embedder returned vectors of {', '.join(map(str, sorted(lengths)))} numbers"
            + (f", not {dimension}" if dimension is not None else " in one reply"),
            embedder=name,
        )
    return checked
