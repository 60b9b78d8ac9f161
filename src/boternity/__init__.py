"""boternity: durable chat sessions and long-term memory for LLM bots."""

from boternity.store import Store, open_store

__all__ = ["Store", "open_store"]
__version__ = "0.1.0"
