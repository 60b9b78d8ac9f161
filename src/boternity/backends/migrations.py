"""Versioned SQL migrations shared by every backend.

Each backend ships numbered files ``NNNN_name.sql`` in its own ``migrations`` package folder.
A migration is recorded with the sha256 of its text; a database whose recorded migrations were
changed, or that is newer than this code, is refused instead of being guessed at.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources

from boternity.errors import SchemaError

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
