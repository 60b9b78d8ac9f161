"""boternity: durable chat sessions and long-term memory for LLM bots."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from boternity.store import Store, open_store

__all__ = ["Store", "open_store"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """``Store`` and ``open_store`` load the storage layer on first use, so a command that
    never opens a store (``bnity --help``) does not pay for importing it."""
    if name in __all__:
        from boternity import store

        return getattr(store, name)
    raise AttributeError(f"module 'boternity' has no attribute {name!r}")
