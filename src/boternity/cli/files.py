"""Files the CLI writes (session exports, backups): one rule for all of them.

Never onto the database or a file its backend keeps beside it (compared by resolved path
and by device+inode, so symlinks, ``..`` and hard links are seen through); never over an
existing file without ``--yes``/``--force`` (refused without a terminal); never half-written (a
temporary file in the same folder, renamed into place once complete).
"""

from __future__ import annotations

import contextlib
import glob
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from boternity.cli.runtime import EXIT_USAGE, CliError, confirm


def _database_files(database: str | None) -> tuple[set[Path], set[Path]]:
    """(files, folders) the CLI must never write into for the ``--db`` value ``database``:
    the database's own paths, as its backend names them (both as named and resolved)."""
    from boternity.config import resolve_database
    from boternity.store import backend_of

    return backend_of(database).own_paths(resolve_database(database))


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def output_file(database: str | None, file: str, *, yes: bool, what: str = "the output") -> Path:
    """Where to write ``file`` (resolved), after checking the CLI may write it there.

    Refuses the database ``database`` (a ``--db`` value) and its companion files, a folder,
    and a missing folder; asks before replacing an existing file (``yes`` skips the question).
    """
    given = Path(file).expanduser()
    dest = Path(os.path.realpath(given))
    files, folders = _database_files(database)
    mine = _identity(dest)
    for protected in files:
        if dest == protected or (mine is not None and mine == _identity(protected)):
            raise CliError(
                f"refusing to write {what} to {file}: that is the database or one of its"
                f" files ({protected.name})",
                exit_code=EXIT_USAGE,
            )
    if any(dest.parent == folder or folder in dest.parents for folder in folders):
        raise CliError(
            f"refusing to write {what} to {file}: that is inside the database's lock folder",
            exit_code=EXIT_USAGE,
        )
    if dest.is_dir():
        raise CliError(f"{file} is a directory; give a file name", exit_code=EXIT_USAGE)
    if not dest.parent.is_dir():
        raise CliError(f"folder {given.parent} does not exist", exit_code=EXIT_USAGE)
    if os.path.lexists(dest):
        confirm(f"Overwrite {file}?", yes=yes)
    return dest


@contextlib.contextmanager
def atomic_write(dest: Path) -> Iterator[Path]:
    """Yield a new, empty, owner-only (0600) temporary file next to ``dest`` to fill; once
    the block ends without error it is flushed to disk and renamed over ``dest``. On any
    error ``dest`` is untouched and the temporary file (and SQLite's files beside it) are
    removed."""
    try:
        fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    except OSError as exc:
        raise CliError(f"cannot write {dest}: {exc.strerror or exc}") from exc
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, dest)
    except OSError as exc:
        raise CliError(f"cannot write {dest}: {exc.strerror or exc}") from exc
    finally:
        # The temporary file, and whatever a database engine kept beside it (``-journal``):
        # its random name makes ``<name>-*`` ours alone.
        for leftover in (tmp, *tmp.parent.glob(glob.escape(tmp.name) + "-*")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()


def write_text(dest: Path, text: str) -> None:
    """``text`` as UTF-8 with ``\\n`` line ends, atomically (see :func:`atomic_write`)."""
    with atomic_write(dest) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(text)
