"""The repository core: BotRepository, ChatRepository and MemoryRepository written once.

A backend supplies a Dialect (its SQL and value adapters) and an Executor (how it runs a
statement and a unit of work); see docs/architecture.md.
"""

from boternity.backends.core.bots import BotCore
from boternity.backends.core.chat import ChatCore
from boternity.backends.core.memory import MemoryCore

__all__ = ["BotCore", "ChatCore", "MemoryCore"]
