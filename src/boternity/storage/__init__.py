"""The repository core: BotRepository, ChatRepository, MemoryRepository and UserRepository written
once.

A backend supplies a Dialect (its SQL and value adapters) and an Executor (how it runs a
statement and a unit of work); see docs/architecture.md.
"""

from boternity.storage.repositories import BotCore, ChatCore, IdsCore, MemoryCore, UserCore

__all__ = ["BotCore", "ChatCore", "IdsCore", "MemoryCore", "UserCore"]
