"""The memory pipeline: extraction through the durable queue, recall into the prompt."""

from boternity.memory.extraction import (
    EXTRACTION_SYSTEM,
    ExtractedFact,
    ExtractionError,
    normalise,
    parse_reply,
)
from boternity.memory.manual import forget, remember
from boternity.memory.recall import MemoryRecall, memory_line, recall_memories
from boternity.memory.worker import ExtractionWorker, WorkerReport, backoff_delay, retry_extraction

__all__ = [
    "EXTRACTION_SYSTEM",
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
