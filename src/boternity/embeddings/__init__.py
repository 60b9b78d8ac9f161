"""Embedders: texts to vectors, so memories can be found by meaning.

    embedder, notice = select_embedder()  # local, openai, or None (text search only)
    if embedder is not None:
        async with embedder:
            vectors = await embedder.embed(["Ana's cat is called Miso"])  # unit float32 arrays

``local`` is WordLlama, offline (``pip install 'boternity[local]'``); ``openai`` is any
OpenAI-compatible ``/embeddings`` endpoint. Errors are the ``EmbeddingError`` tree in
``boternity.errors``. numpy is imported only when vectors are made.
"""

from boternity.embeddings.base import Embedder, Vector
from boternity.embeddings.local import LocalEmbedder
from boternity.embeddings.openai import OpenAIEmbedder
from boternity.embeddings.select import EMBEDDERS, NONE_NOTICE, select_embedder
from boternity.errors import EmbeddingDimensionError, EmbeddingError, EmbeddingUnavailableError

__all__ = [
    "EMBEDDERS",
    "NONE_NOTICE",
    "Embedder",
    "EmbeddingDimensionError",
    "EmbeddingError",
    "EmbeddingUnavailableError",
    "LocalEmbedder",
    "OpenAIEmbedder",
    "Vector",
    "select_embedder",
]
