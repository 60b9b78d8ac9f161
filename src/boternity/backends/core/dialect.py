"""What a backend gives the repository core: its SQL, its value adapters, its executor.

The core writes every multi-statement unit of work once, as a generator: it yields a step
(SQL text from the dialect's statements, parameters, and the shape of result it wants) and
is sent the result back. Each backend's executor drives the generator its own way: SQLite
synchronously on its writer thread (a unit is still one thread hop and joins group commit),
PostgreSQL with an ``await`` per step inside one transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from boternity.backends.common import check_id, check_page
from boternity.backends.core.sql import Statements
from boternity.backends.core.tables import TIME, UUID, Adapter, Table, make_decoder, make_encoder
from boternity.errors import BoternityError, NotFoundError

T = TypeVar("T")
M = TypeVar("M")

#: Result shapes a step asks for: nothing, one row (or None), every row, the first column
#: of the first row (or None), the number of rows the statement changed.
NONE, ONE, ALL, VALUE, COUNT = range(5)

Step = tuple[str, Sequence[Any], int]
Unit = Generator[Step, Any, T]
#: Makes a fresh unit: an executor may run a unit again from the start (a retried deadlock).
UnitFactory = Callable[[], Unit[T]]
#: Called only when a write clashes on a unique column: that column (``"bots.slug"``) ->
#: the ConflictError message (built lazily: formatting ids on every write costs time).
Conflicts = Callable[[], Mapping[str, str]] | None


async def shielded(work: Awaitable[T]) -> T:
    """Await ``work`` to its end even if the caller is cancelled, then re-raise the
    cancellation: a cancelled caller never leaves a write in doubt."""
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        with contextlib.suppress(BoternityError):
            await task
        raise


class Executor(Protocol):
    async def read(
        self, sql: str, params: Sequence[Any], shape: int, *, browse: bool = False
    ) -> Any:
        """One statement. ``browse`` reads (lists, pages) may be served by a replica."""
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
    #: The full-text query for search terms (plain words, see common.search_terms).
    search_text: Callable[[list[str]], str]
    #: What to bind as LIMIT for "no limit".
    no_limit: int | None
    _codecs: dict[tuple[str, str, str | None], Any] = field(default_factory=dict)

    def encoder(self, t: Table[M]) -> Callable[[M], list[Any]]:
        """Generated once per dialect and table (see tables.make_encoder)."""
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


class Repository:
    """What every repository of the core holds: the executor, the dialect, its statements."""

    def __init__(self, executor: Executor, dialect: Dialect) -> None:
        self._x = executor
        self._d = dialect
        self._q = dialect.sql
        self._key = dialect.adapter(UUID)
        self._time = dialect.adapter(TIME)

    def _id(self, value: Any, name: str) -> Any:
        """A checked id argument, as bound."""
        return self._key(check_id(value, name))

    def _opt_id(self, value: Any, name: str = "bot_id") -> Any:
        return None if value is None else self._id(value, name)

    def _opt_time(self, value: Any) -> Any:
        return None if value is None else self._time(value)

    async def _get(self, sql: str, decode: Callable[[Any], M], *params: Any) -> M | None:
        """The one row a key names, or None."""
        row = await self._x.read(sql, params, ONE)
        return None if row is None else decode(row)

    async def _all(
        self, sql: str, decode: Callable[[Any], M], *params: Any, browse: bool = False
    ) -> list[M]:
        return [decode(r) for r in await self._x.read(sql, params, ALL, browse=browse)]

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
