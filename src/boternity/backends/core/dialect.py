"""What a backend gives the repository core: its SQL, its value adapters, its executor.

The core writes every multi-statement unit of work once, as a generator: it yields a step
(SQL text from the dialect's statements, parameters, and the shape of result it wants) and
is sent the result back. Each backend's executor drives the generator its own way: SQLite
synchronously on its writer thread (a unit is still one thread hop and joins group commit),
PostgreSQL with an ``await`` per step inside one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from boternity.backends.core.tables import TIME, UUID, Adapter, Table, make_decoder, make_encoder
from boternity.errors import NotFoundError

T = TypeVar("T")
M = TypeVar("M")

#: Result shapes a step asks for: nothing, one row (or None), every row, the first column
#: of the first row (or None), the number of rows the statement changed.
NONE, ONE, ALL, VALUE, COUNT = range(5)

Step = tuple[str, Sequence[Any], int]
Unit = Generator[Step, Any, T]
#: Makes a fresh unit: an executor may run a unit again from the start (a retried deadlock).
UnitFactory = Callable[[], Unit[T]]


class Executor(Protocol):
    async def read(
        self, sql: str, params: Sequence[Any], shape: int, *, browse: bool = False
    ) -> Any:
        """One statement. ``browse`` reads (lists, pages) may be served by a replica."""
        ...

    async def write(
        self,
        unit: UnitFactory[T],
        *,
        atomic: bool = False,
        conflicts: Mapping[str, str] | None = None,
    ) -> T:
        """Run the unit in a write transaction and return its result once committed.

        ``atomic``: the unit has several steps that must commit together (a backend whose
        single statements commit on their own needs to know). ``conflicts`` maps a unique
        column (``"bots.slug"``) to the ConflictError message to use when it clashes.
        """
        ...


@dataclass(frozen=True)
class Statements:
    """Every statement the core runs, by name. Results of ad-hoc column lists are noted;
    table rows are in ``Table.columns`` order. Parameters are positional, in the order
    noted (or the table's column order). A dialect that replaces a unit may leave the
    statements only that unit used empty."""

    # bots
    insert_bot: str  # BOTS
    get_bot: str  # id -> BOTS row
    get_bot_by_slug: str  # slug
    list_bots: str  # status|None, category|None, limit|None, offset
    update_bot: str  # name, slug, description, status, category, tags, user_id, updated_at, id
    delete_bot: str  # id -> COUNT
    bump_soul_count: str  # bot id, updated_at -> a value when the bot exists
    insert_soul: str  # id, bot_id, content, hash, message, created_at -> version (N+1)
    get_soul: str  # bot id, version
    latest_soul: str  # bot id
    list_souls: str  # bot id
    # chat sessions and messages
    count_conversation: str  # bot id -> COUNT
    insert_session: str  # SESSIONS
    get_session: str
    update_session: str  # title, status, ended_at, id -> SESSIONS row
    list_sessions: str  # bot id, limit|None, offset
    active_sessions: str  # bot id
    delete_session: str  # id -> COUNT
    bump_session: str  # tokens in, tokens out, at, id -> seq, bot_id, totals fit
    insert_message: str  # MESSAGES
    bump_bot_tokens: str  # tokens, at, bot id -> total fits
    get_message: str
    get_messages: str  # session id, limit|None, offset
    recent_messages: str  # session id, limit
    message_count: str  # session id -> message_count
    reset_message_count: str  # session id -> a value when the session exists
    clear_messages: str  # session id -> COUNT
    clear_summaries: str  # session id
    clear_pending: str  # session id
    count_sessions: str
    count_messages: str
    # memories
    memory_refs: str  # bot, session, source message, superseded_by, id -> bot exists,
    # session's bot, message's session, message's bot, superseding memory's bot, id taken
    insert_memory: str  # MEMORIES
    insert_history: str  # HISTORY
    get_memory: str
    get_memories: str  # bot id, include superseded, limit|None
    memories_by_session: str
    superseded_by: str  # id -> (id, fact) of the memories it superseded, locked
    delete_memory: str  # id -> bot_id, fact
    delete_all_memories: str  # bot id -> (id, fact) each
    search: str  # bot id, Dialect.search_text, include superseded, limit
    history: str  # memory id
    lock_memory: str  # id -> bot_id, superseded_by, fact (locked for the transaction)
    supersede: str  # new id, old id
    # the extraction queue
    insert_pending: str  # PENDING -> id when inserted (the session exists and is the bot's)
    session_bot: str  # session id -> bot_id
    pending_for_bot: str  # bot id, max attempts
    all_pending: str  # bot id|None
    get_pending: str
    delete_pending: str  # id -> COUNT
    update_pending: str  # attempt_count, last_attempt_at, next_attempt_at, error, id -> PENDING
    claim: str  # now, lease end, max attempts, bot id|None, limit -> PENDING rows
    # context summaries
    insert_summary: str  # id, session, summary, start, end, tokens, at -> id when inserted
    # (the session exists and has messages up to end)
    latest_summary: str
    list_summaries: str


def _same(value: Any) -> Any:
    return value


@dataclass(eq=False)
class Dialect:
    """A backend's SQL and how it stores values. ``to_db``/``from_db`` map a column kind
    (tables.UUID, TIME, FLAG, TAGS) to a converter; kinds not given pass unchanged."""

    name: str
    sql: Statements
    to_db: Mapping[str, Adapter]
    from_db: Mapping[str, Adapter]
    #: The full-text query for search terms (plain words, see common.search_terms).
    search_text: Callable[[list[str]], str]
    _codecs: dict[tuple[str, str, str | None], Any] = field(default_factory=dict)

    def encoder(self, t: Table[M]) -> Callable[[M], list[Any]]:
        key = ("out", t.name, None)
        if key not in self._codecs:
            self._codecs[key] = make_encoder(t, self.to_db)
        return self._codecs[key]  # type: ignore[no-any-return]

    def decoder(self, t: Table[M], fixed: str | None = None) -> Callable[..., M]:
        key = ("in", t.name, fixed)
        if key not in self._codecs:
            self._codecs[key] = make_decoder(t, self.from_db, fixed)
        return self._codecs[key]  # type: ignore[no-any-return]

    def adapter(self, kind: str) -> Adapter:
        return self.to_db.get(kind) or _same

    def key(self, value: Any) -> Any:
        """An id as this dialect binds it."""
        return self.adapter(UUID)(value)


class Repository:
    """What every repository of the core holds: the executor, the dialect, its statements."""

    def __init__(self, executor: Executor, dialect: Dialect) -> None:
        self._x = executor
        self._d = dialect
        self._q = dialect.sql
        self._key = dialect.adapter(UUID)
        self._time = dialect.adapter(TIME)

    def _opt_key(self, value: Any) -> Any:
        return None if value is None else self._key(value)

    def _opt_time(self, value: Any) -> Any:
        return None if value is None else self._time(value)


def missing(what: str, key: object, more: str = "") -> NotFoundError:
    return NotFoundError(f"{what} {key} not found{more}")
