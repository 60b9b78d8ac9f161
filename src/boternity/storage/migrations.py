"""Versioned SQL migrations and the one runner every backend uses.

Each backend ships numbered files ``NNNN_name.sql`` in its own ``migrations`` package folder.
A migration is recorded with the sha256 of its text; a database whose recorded migrations were
changed, or that is newer than this code, is refused instead of being guessed at.

The runner (:class:`Migrator`) is written once, as units of work (see storage/dialect.py); a
dialect supplies only the ledger's SQL, its lock, and how a script becomes statements.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources

from boternity.errors import SchemaError
from boternity.ids import utc_now
from boternity.storage.dialect import ALL, NONE, VALUE, Dialect, Unit
from boternity.storage.tables import TIME

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


def load_migrations(package: str) -> list[Migration]:
    """The migrations shipped in ``package``, by version; gaps and duplicates are a bug."""
    found: list[Migration] = []
    for entry in resources.files(package).iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        raise SchemaError(f"migrations in {package} are not numbered 1..N without gaps")
    return found


def pending_migrations(
    available: list[Migration], applied: Mapping[int, str], *, where: str
) -> list[Migration]:
    """What still has to run, after checking that what ran matches this code.

    ``applied`` maps version -> recorded checksum. ``where`` names the database in messages.
    """
    known = {m.version: m for m in available}
    newest = max(known, default=0)
    ahead = sorted(v for v in applied if v > newest)
    if ahead:
        raise SchemaError(
            f"{where} has schema version {ahead[-1]}, newer than this boternity knows "
            f"(up to {newest}); upgrade boternity, or use a database made by this version"
        )
    for version, checksum in sorted(applied.items()):
        if known[version].checksum != checksum:
            raise SchemaError(
                f"{where}: migration {version:04d}_{known[version].name} was changed after it "
                "was applied (checksum mismatch); restore the original migration or rebuild "
                "the database from a backup"
            )
    return [m for m in available if m.version not in applied]


class Migrator:
    """Brings one database up to ``available``, one transaction per migration, each with its
    record, so concurrent openers (any number of processes) run each exactly once.

    A backend first runs :meth:`check` with no lock (a read-only command must not wait for
    another process's write just to learn that nothing is due), then, while it gives None,
    :meth:`step` in a write transaction, and passes a driver error to :meth:`blame`.
    """

    def __init__(self, available: list[Migration], dialect: Dialect, *, where: str) -> None:
        self._available = available
        self._d = dialect
        self._where = where  # names the database in messages
        self._running: Migration | None = None

    def check(self) -> Unit[int | None]:
        """The schema version when nothing is due, else None (after checking what ran)."""
        recorded = []
        if (yield self._d.sql.ledger_exists, (), VALUE):
            recorded = yield self._d.sql.applied_migrations, (), ALL
        return None if self._pending(recorded) else len(self._available)

    def step(self) -> Unit[int | None]:
        """Under the dialect's lock, apply the next pending migration and record it (None),
        or give the schema version when none is left."""
        q = self._d.sql
        yield q.lock_migrations, (), NONE
        # CREATE ... IF NOT EXISTS still takes a lock (and logs a notice): skip it once done.
        if not (yield q.ledger_exists, (), VALUE):
            yield q.create_ledger, (), NONE
        todo = self._pending((yield q.applied_migrations, (), ALL))
        if not todo:
            return len(self._available)
        m = self._running = todo[0]
        for statement in self._d.script(m.sql):
            yield statement, (), NONE
        at = self._d.adapter(TIME)(utc_now())
        yield q.record_migration, (m.version, m.name, m.checksum, at), NONE
        self._running = None
        return None

    def blame(self, exc: BaseException) -> None:
        """SchemaError naming the migration that ``exc`` (a driver error) stopped, if one
        was running: its transaction was rolled back, so nothing of it is left."""
        if (m := self._running) is not None:
            self._running = None
            raise SchemaError(
                f"{self._where}: migration {m.version:04d}_{m.name} failed and was rolled back:"
                f" {exc}"
            ) from exc

    def _pending(self, recorded: list[tuple[int, str]]) -> list[Migration]:
        applied = {int(v): str(c) for v, c in recorded}
        return pending_migrations(self._available, applied, where=self._where)
