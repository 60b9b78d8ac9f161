"""What a backend gives the repository core: its SQL, its value adapters, its executor.

The core writes every multi-statement unit of work once, as a generator: it yields a step
(SQL text from the dialect's statements, parameters, and the shape of result it wants) and
is sent the result back. Each backend's executor drives the generator its own way: SQLite
synchronously on its writer thread (a unit is still one thread hop and joins group commit),
PostgreSQL with an ``await`` per step inside one transaction.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from boternity.errors import (
    ConflictError,
    NotFoundError,
    RepositoryError,
    StoreBusyError,
    ValidationError,
)
from boternity.storage.checks import check_id, check_page
from boternity.storage.sql import Statements
from boternity.storage.tables import (
    TIME,
    UUID,
    UUIDS,
    Adapter,
    Decoder,
    Table,
    decode_all,
    make_decoder,
    make_encoder,
)

T = TypeVar("T")
M = TypeVar("M")

#: Result shapes a step asks for: nothing, one row (or None), every row, the first column
#: of the first row (or None), the number of rows the statement changed.
NONE, ONE, ALL, VALUE, COUNT = range(5)
#: The most rows a ``bounded`` read may return.
QUICK_ROWS = 200

Step = tuple[str, Sequence[Any], int]
Unit = Generator[Step, Any, T]
#: Makes a fresh unit: an executor may run a unit again from the start (a retried deadlock).
UnitFactory = Callable[[], Unit[T]]
#: Called only when a write clashes on a unique column: that column (``"bots.slug"``) ->
#: the ConflictError message (built lazily: formatting ids on every write costs time).
Conflicts = Callable[[], Mapping[str, str]] | None


def id_taken(t: Table[Any], what: str, key: object = None) -> Conflicts:
    """Conflicts for inserting a row of ``t`` whose id ``key`` (None: one of several) is taken."""
    return lambda: {
        f"{t.name}.id": f"a {what} with {'this id' if key is None else f'id {key}'} already exists"
    }


#: What a driver error means, as a backend's ``errors.translate`` classifies it: a clash on
#: a unique column, a missing referenced row, a value the schema refuses, a busy database.
UNIQUE, FOREIGN_KEY, REFUSED, BUSY = "unique", "foreign key", "refused", "busy"


def driver_error(
    exc: BaseException, kind: str, conflicts: Conflicts = None, column: str = ""
) -> RepositoryError | ValidationError:
    """The library error for driver error ``exc``, which its backend classified as ``kind``
    (any other text: the message of a plain RepositoryError), with ``exc`` as its cause.
    ``column`` is the ``"table.column"`` of a unique clash, for its message in ``conflicts``."""
    error: RepositoryError | ValidationError
    if kind == UNIQUE:
        messages = conflicts() if conflicts else {}
        error = ConflictError(messages.get(column) or f"already exists: {exc}")
    elif kind == FOREIGN_KEY:
        error = NotFoundError("a row this write refers to does not exist")
    elif kind == REFUSED:
        error = ValidationError(f"refused by the database: {exc}")
    elif kind == BUSY:
        error = StoreBusyError(f"the database stayed busy: {exc}")
    else:
        error = RepositoryError(kind)
    error.__cause__ = exc
    return error


class _Finishing(asyncio.Task[Any]):
    """A task that refuses to be cancelled. A caller cancelled while awaiting it is woken
    once it is done and only then raises its CancelledError: what Task.cancel does when
    the future it awaits refuses (as asyncio.shield, without shield's extra future and
    step of the event loop per call)."""

    def cancel(self, msg: Any = None) -> bool:
        return False


def shielded(work: Coroutine[Any, Any, T]) -> Coroutine[Any, Any, T]:
    """Run ``work`` to its end even if the caller is cancelled, then let the cancellation
    be raised: a cancelled caller never leaves a write in doubt."""
    return _Finishing(work, loop=asyncio.get_running_loop())  # type: ignore[return-value]


class Executor(Protocol):
    async def read(
        self, sql: str, params: Sequence[Any], shape: int, *, browse: bool = False,
        bounded: bool = False,
    ) -> Any:  # fmt: skip
        """One statement. ``browse`` reads (lists, pages) may be served by a replica.
        ``bounded``: an index lookup of at most QUICK_ROWS rows, cheap enough to run on the
        caller's thread where a backend can (SQLite does, instead of a thread hop)."""
        ...

    async def write(
        self, unit: UnitFactory[T], *, atomic: bool = False, conflicts: Conflicts = None
    ) -> T:
        """Run the unit in a write transaction and return its result once committed.

        ``atomic``: the unit has several steps that must commit together (a backend whose
        single statements commit on their own needs to know). ``conflicts`` gives the
        ConflictError message for a clash on a unique column (see Conflicts).
        """
        ...


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
    #: The full-text query for search terms (plain words, see common.search_terms) that
    #: matches a text with any of them, or (True) only a text with every one.
    search_text: Callable[[list[str], bool], str]
    #: What to bind as LIMIT for "no limit".
    no_limit: int | None
    #: A migration script as the statements to run, one step each.
    script: Callable[[str], list[str]]
    #: Where the memory search can leave out rows (Statements.term_counts, search_among):
    #: (rows matching each of some terms, at least the index's row count) -> more than the
    #: rank a row matching only those terms can have (see MemoryCore.search_memories).
    score_bound: Callable[[list[int], int], float] | None = None
    #: Where the memory search can rank only the rows that can reach its results
    #: (Statements.search_candidates; see MemoryCore._search_candidates): a module like
    #: backends.sqlite.ranking, whose plan(terms, limit) gives a Plan or None.
    pruning: Any = None
    _codecs: dict[tuple[str, str, str | None], Any] = field(default_factory=dict)

    def encoder(self, t: Table[M]) -> Callable[[M], list[Any]]:
        """Generated once per dialect and table (see tables.make_encoder)."""
        key = ("out", t.name, None)
        if key not in self._codecs:
            self._codecs[key] = make_encoder(t, self.to_db)
        return self._codecs[key]  # type: ignore[no-any-return]

    def decoder(self, t: Table[M], fixed: str | None = None) -> Decoder[M]:
        key = ("in", t.name, fixed)
        if key not in self._codecs:
            self._codecs[key] = make_decoder(t, self.from_db, fixed)
        return self._codecs[key]  # type: ignore[no-any-return]

    def adapter(self, kind: str) -> Adapter:
        return self.to_db.get(kind) or _same


class Repository:
    """What every repository of the core holds: the executor, the dialect, its statements."""

    def __init__(self, executor: Executor, dialect: Dialect) -> None:
        self._x = executor
        self._d = dialect
        self._q = dialect.sql
        self._key = dialect.adapter(UUID)
        self._time = dialect.adapter(TIME)
        self._keys = dialect.adapter(UUIDS)

    def _id(self, value: Any, name: str) -> Any:
        """A checked id argument, as bound."""
        return self._key(check_id(value, name))

    def _opt_id(self, value: Any, name: str = "bot_id") -> Any:
        return None if value is None else self._id(value, name)

    def _id_list(self, values: Iterable[Any], name: str) -> Any:
        """Ids checked and bound as one list parameter (see sql.IDS); None when there are
        none, so there is nothing to look up."""
        if isinstance(values, str | bytes | uuid.UUID) or not isinstance(values, Iterable):
            raise ValidationError(
                f"{name} must be a collection of ids, got {type(values).__name__}"
            )
        ids = sorted({check_id(v, name) for v in values})
        return self._keys(ids) if ids else None

    async def _by_ids(
        self, sql: str, decode: Callable[[Any], Any], values: Iterable[Any], name: str
    ) -> dict[uuid.UUID, Any]:
        """The rows a list of ids names, by id, in one statement (missing ids left out)."""
        bound = self._id_list(values, name)
        if bound is None:
            return {}
        found = decode_all(decode, await self._x.read(sql, (bound,), ALL, browse=True))
        return {m.id: m for m in found}

    def _opt_time(self, value: Any) -> Any:
        return None if value is None else self._time(value)

    async def _get(self, sql: str, decode: Callable[[Any], M], *params: Any) -> M | None:
        """The one row a key names, or None."""
        row = await self._x.read(sql, params, ONE, bounded=True)
        return None if row is None else decode(row)

    async def _count(self, sql: str, *params: Any) -> int:
        return int(await self._x.read(sql, params, VALUE, browse=True))

    async def _all(
        self,
        sql: str,
        decode: Callable[[Any], M],
        *params: Any,
        browse: bool = False,
        bounded: bool = False,
    ) -> list[M]:
        rows = await self._x.read(sql, params, ALL, browse=browse, bounded=bounded)
        return decode_all(decode, rows)

    async def _update(
        self,
        sql: str,
        params: Sequence[Any],
        decode: Callable[[Any], M],
        what: str,
        key: object,
        conflicts: Conflicts = None,
    ) -> M:
        """One UPDATE ... RETURNING of a row that must exist: the stored row."""

        def unit() -> Unit[M]:
            row = yield sql, params, ONE
            if row is None:
                raise missing(what, key)
            return decode(row)

        return await self._x.write(unit, conflicts=conflicts)

    async def _delete(self, sql: str, bound: Any, what: str, key: object) -> None:
        """One DELETE of a row that must exist."""

        def unit() -> Unit[None]:
            if (yield sql, (bound,), COUNT) == 0:
                raise missing(what, key)

        await self._x.write(unit)

    def _page(self, limit: int | None, offset: int | None) -> tuple[int | None, int]:
        """LIMIT and OFFSET to bind, checked."""
        lim, off = check_page(limit, offset)
        return self._d.no_limit if lim is None else lim, off


def missing(what: str, key: object, more: str = "") -> NotFoundError:
    return NotFoundError(f"{what} {key} not found{more}")
