"""An offline embedder: WordLlama's ``l2_supercat`` token embeddings (256 dimensions), read
from the files its wheel ships (``pip install 'boternity[local]'``).

WordLlama's own ``WordLlama.load()`` looks for the tokenizer in a folder the wheel does not
have (``wordllama/tokenizer/`` instead of ``wordllama/tokenizers/``) and then downloads it,
and importing ``wordllama`` configures the root logger (``logging.basicConfig``). So the
package is never imported here: its two data files are found with ``importlib`` and read
with ``safetensors`` and ``tokenizers`` (its own dependencies), and the embedding is what
WordLlama computes: the mean of the text's token vectors, scaled to unit length. Nothing is
ever downloaded. Embedding runs in a worker thread, so it never blocks the event loop.
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from boternity.embeddings.base import Vector, batches, check_batch_size, check_texts, unit_rows
from boternity.errors import EmbeddingDimensionError, EmbeddingError, ValidationError
from boternity.llm.base import ClosesOnExit

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

DEFAULT_MODEL = "wordllama/l2_supercat_256"
DIMENSION = 256
DEFAULT_BATCH_SIZE = 256
INSTALL_HINT = "install the extra: pip install 'boternity[local]'"
_WEIGHTS = ("weights", "l2_supercat_256.safetensors")
_TOKENIZER = ("tokenizers", "l2_supercat_tokenizer_config.json")
_TENSOR = "embedding.weight"
#: What the embedder imports (never ``wordllama`` itself).
_MODULES = ("numpy", "safetensors", "tokenizers")


@dataclass(frozen=True, slots=True)
class ModelFiles:
    weights: Path
    tokenizer: Path


def model_files() -> ModelFiles:
    """The installed WordLlama wheel's weights and tokenizer; ``EmbeddingError`` (with how to
    install them) when the extra is missing. Imports nothing."""
    try:
        spec = importlib.util.find_spec("wordllama")
        missing = [m for m in _MODULES if importlib.util.find_spec(m) is None]
    except (ImportError, ValueError) as exc:
        raise EmbeddingError(
            f"the local embedder is not installed: {INSTALL_HINT}", embedder="local"
        ) from exc
    if spec is None or not spec.submodule_search_locations or missing:
        what = ", ".join(missing) if spec is not None else "wordllama"
        raise EmbeddingError(
            f"the local embedder is not installed ({what} missing): {INSTALL_HINT}",
            embedder="local",
        )
    root = Path(next(iter(spec.submodule_search_locations)))
    files = ModelFiles(root.joinpath(*_WEIGHTS), root.joinpath(*_TOKENIZER))
    for path in (files.weights, files.tokenizer):
        if not path.is_file():
            raise EmbeddingError(
                f"the local embedder's model file {path} is missing (a wordllama wheel"
                f" without it?): reinstall it: pip install --force-reinstall"
                f" 'boternity[local]'",
                embedder="local",
            )
    return files


def available() -> bool:
    """Whether the ``local`` extra is installed (without importing it)."""
    try:
        model_files()
    except EmbeddingError:
        return False
    return True


class _Model:
    """The loaded token embeddings and tokenizer (about 35 MB of memory)."""

    def __init__(self, files: ModelFiles) -> None:
        import numpy as np
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        tensors = load_file(str(files.weights))
        self.table: NDArray[np.float32] = np.ascontiguousarray(tensors[_TENSOR], dtype=np.float32)
        self.tokenizer = Tokenizer.from_file(str(files.tokenizer))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()

    def embed(self, texts: list[str]) -> list[Vector]:
        import numpy as np

        encodings = self.tokenizer.encode_batch(texts, add_special_tokens=False)
        lengths = np.fromiter((len(e.ids) for e in encodings), np.int64, len(encodings))
        flat = np.fromiter((i for e in encodings for i in e.ids), np.int64, int(lengths.sum()))
        np.clip(flat, 0, self.table.shape[0] - 1, out=flat)
        sums = np.zeros((len(texts), self.table.shape[1]), np.float32)
        filled = lengths > 0
        if filled.any():
            starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
            sums[filled] = np.add.reduceat(self.table[flat], starts[filled], axis=0)
        means = (sums / np.maximum(lengths, 1)[:, None]).astype(np.float32)
        return unit_rows(means)


class LocalEmbedder(ClosesOnExit):
    """WordLlama ``l2_supercat`` (256 dimensions), offline. The model is read on the first
    ``embed`` (0.1 to 0.5 s, in a worker thread), once per embedder."""

    name = "local"

    def __init__(self, model: str | None = None, *, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        model = (model or "").strip() or DEFAULT_MODEL
        if model != DEFAULT_MODEL:
            raise ValidationError(
                f"unknown local embedding model {model!r} (the local embedder has one:"
                f" {DEFAULT_MODEL})"
            )
        self._batch_size = check_batch_size(batch_size)
        self._files = model_files()
        self._model: _Model | None = None
        self._lock = threading.Lock()

    @property
    def model(self) -> str:
        return DEFAULT_MODEL

    @property
    def dimension(self) -> int:
        return DIMENSION

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r})"

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        checked = check_texts(texts)
        vectors: list[Vector] = []
        for batch in batches(checked, self._batch_size):
            vectors.extend(await asyncio.to_thread(self._embed_batch, batch))
        return vectors

    def _embed_batch(self, texts: list[str]) -> list[Vector]:
        vectors = self._loaded().embed(texts)
        if vectors and vectors[0].shape != (DIMENSION,):
            raise EmbeddingDimensionError(
                f"the local model file {self._files.weights} holds vectors of shape"
                f" {vectors[0].shape}, expected ({DIMENSION},)",
                embedder=self.name,
            )
        return vectors

    def _loaded(self) -> _Model:
        with self._lock:
            if self._model is None:
                try:
                    self._model = _Model(self._files)
                except Exception as exc:  # a damaged file: safetensors, tokenizers, KeyError
                    raise EmbeddingError(
                        f"cannot read the local embedding model ({self._files.weights.parent.parent}):"
                        f" {type(exc).__name__}: {exc}",
                        embedder=self.name,
                    ) from exc
            return self._model


__all__: list[str] = [
    "DEFAULT_MODEL",
    "DIMENSION",
    "LocalEmbedder",
    "ModelFiles",
    "available",
    "model_files",
]
