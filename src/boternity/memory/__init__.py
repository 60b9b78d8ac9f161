"""The memory pipeline: extraction through the durable queue, embedding off the chat path,
search by words and by meaning, recall into the prompt."""

from boternity.memory.embedding import EmbeddingBackfill, EmbeddingReport
from boternity.memory.extraction import (
    EXTRACTION_SYSTEM,
    ExtractedFact,
    ExtractionError,
    normalise,
    parse_reply,
)
from boternity.memory.manual import forget, remember
from boternity.memory.recall import MemoryRecall, memory_line, recall_memories
from boternity.memory.search import (
    SEARCH_MODES,
    MemoryHit,
    MemorySearch,
    SearchMode,
    SearchResult,
    search_memories,
)
from boternity.memory.worker import ExtractionWorker, WorkerReport, backoff_delay, retry_extraction

__all__ = [
    "EXTRACTION_SYSTEM",
    "SEARCH_MODES",
    "EmbeddingBackfill",
    "EmbeddingReport",
    "MemoryHit",
    "MemorySearch",
    "SearchMode",
    "SearchResult",
    "search_memories",
    "ExtractedFact",
    "ExtractionError",
    "ExtractionWorker",
    "WorkerReport",
    "backoff_delay",
    "forget",
    "MemoryRecall",
    "memory_line",
    "normalise",
    "parse_reply",
    "recall_memories",
    "remember",
    "retry_extraction",
]
