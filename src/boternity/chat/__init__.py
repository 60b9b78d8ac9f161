"""The chat engine: session lifecycle, streaming turns, titles, the context window, liveness.

See :class:`ChatEngine` (sessions and the queue worker) and :class:`LiveSession` (one
session: turns and writes, in ``boternity.chat.session``). Prompts and request building live
in ``boternity.chat.prompt``, the window and summaries in ``boternity.chat.window``, titles in
``boternity.chat.titles``, session ownership and crash recovery in ``boternity.chat.liveness``.
"""

from boternity.chat.engine import (
    BotUnavailableError,
    ChatEngine,
    QueueWorker,
    Recall,
)
from boternity.chat.liveness import (
    SessionBusyError,
    SessionLock,
    SessionLocks,
    locks_for_store,
    recover_crashed_sessions,
)
from boternity.chat.session import STOP_CANCELLED, STOP_ERROR, LiveSession, Turn
from boternity.chat.window import WindowPolicy

__all__ = [
    "STOP_CANCELLED",
    "STOP_ERROR",
    "BotUnavailableError",
    "ChatEngine",
    "LiveSession",
    "QueueWorker",
    "Recall",
    "SessionBusyError",
    "SessionLock",
    "SessionLocks",
    "Turn",
    "WindowPolicy",
    "locks_for_store",
    "recover_crashed_sessions",
]
