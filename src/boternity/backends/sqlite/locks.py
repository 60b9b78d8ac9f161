"""Session ownership for SQLite: an ``flock`` on ``<db>.sessions/<session_id>.lock``.

``flock`` locks belong to an open file description, so two engines in one process exclude
each other too, and the descriptor is close-on-exec, so child processes never inherit
ownership; the operating system releases the lock when its holder dies. The locks are named
after the database's real path, so a symlink, ``..`` or relative path to one file shares
them; a database file with several hard links has no single name and is refused (SQLite
itself keeps a separate WAL per name). See :mod:`boternity.chat.liveness` for how the engine
uses them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import uuid
from pathlib import Path

from boternity.errors import RepositoryError

__all__ = ["LOCK_FOLDER_SUFFIX", "FileSessionLock", "FileSessionLocks"]

#: The folder of a database file ``X``'s lock files is ``X.sessions``.
LOCK_FOLDER_SUFFIX = ".sessions"


def _same_file(path: Path, fd: int) -> bool:
    """True while ``path`` names the file open as ``fd`` (nobody unlinked or replaced it)."""
    try:
        current = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (current.st_ino, current.st_dev) == (mine.st_ino, mine.st_dev)


class FileSessionLock:
    def __init__(
        self, session_id: uuid.UUID, path: Path, fd: int, owner: FileSessionLocks | None = None
    ) -> None:
        self._session_id = session_id
        self._path = path
        self._fd: int | None = fd
        self._owner = owner

    @property
    def session_id(self) -> uuid.UUID:
        return self._session_id

    @property
    def held(self) -> bool:
        return self._fd is not None

    def _is_current(self) -> bool:
        """True while the file at the lock's path is the one this lock holds."""
        return self._fd is not None and _same_file(self._path, self._fd)

    async def still_held(self) -> bool:
        return self._is_current()

    async def reacquire(self) -> bool:
        if self._is_current():
            return True
        if self._owner is None:
            return False
        self._drop(unlink=False)  # the path is no longer ours: leave whatever is there
        try:
            self._fd = self._owner._locked_file(self._session_id)
        except OSError as exc:  # e.g. the lock folder cannot be created any more
            raise RepositoryError(f"taking the session lock back: {exc}") from exc
        if self._fd is None:
            return False
        self._owner._held.add(self)
        return True

    async def release(self) -> None:
        # Unlink while still holding the lock: a process that opened the old file locks an
        # orphan inode, notices (try_acquire compares inodes) and retries on a fresh file.
        # A file that is not ours any more (replaced behind our back) is left alone.
        self._drop(unlink=self._is_current())

    def _drop(self, *, unlink: bool) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        if self._owner is not None:
            self._owner._held.discard(self)
        try:
            if unlink:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self._path)
        finally:
            os.close(fd)

    def __repr__(self) -> str:
        return f"FileSessionLock({self._session_id}, held={self.held})"


class FileSessionLocks:
    """``flock`` on one file per session in ``directory`` (created 0700, files 0600).

    ``database``, when given, is the file the locks guard: it is refused while it has more
    than one hard link, since each name would get its own lock folder.
    """

    def __init__(
        self, directory: str | os.PathLike[str], *, database: str | os.PathLike[str] | None = None
    ) -> None:
        self.directory = Path(directory)
        self.database = None if database is None else Path(database)
        self._held: set[FileSessionLock] = set()

    @classmethod
    def for_database(cls, path: str | os.PathLike[str]) -> FileSessionLocks:
        """The locks of the SQLite database at ``path``, named after its real path, so every
        way of reaching the file (symlink, ``..``, relative) shares them."""
        real = os.path.realpath(os.fspath(path))
        locks = cls(Path(f"{real}{LOCK_FOLDER_SUFFIX}"), database=real)
        locks._check_database()
        return locks

    def _check_database(self) -> None:
        if self.database is None:
            return
        try:
            links = os.stat(self.database).st_nlink
        except FileNotFoundError:
            return
        if links > 1:
            # SQLite keeps a WAL per name too: through another name the live writes are not
            # even visible.
            raise RepositoryError(
                f"{self.database} has {links} hard links: chat sessions need the database file"
                " to have one name (remove the other links, or copy the file)"
            )

    def path_for(self, session_id: uuid.UUID) -> Path:
        return self.directory / f"{session_id}.lock"

    async def try_acquire(self, session_id: uuid.UUID) -> FileSessionLock | None:
        # Every call below is non-blocking (LOCK_NB), so running them on the loop is fine.
        return self._try_acquire(session_id)

    def _try_acquire(self, session_id: uuid.UUID) -> FileSessionLock | None:
        fd = self._locked_file(session_id)
        if fd is None:
            return None
        lock = FileSessionLock(session_id, self.path_for(session_id), fd, self)
        self._held.add(lock)
        return lock

    def _locked_file(self, session_id: uuid.UUID) -> int | None:
        """A descriptor of the session's lock file, locked; None when another holds it."""
        self._check_database()
        path = self.path_for(session_id)
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise self._unusable(exc) from exc
        while True:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError as exc:
                raise self._unusable(exc) from exc
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return None
            except BaseException:
                os.close(fd)
                raise
            if not _same_file(path, fd):
                os.close(fd)  # the previous holder unlinked it after we opened it
                continue
            # For humans looking at the folder; the lock itself is what counts.
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return fd

    def _unusable(self, exc: OSError) -> RepositoryError:
        """A lock folder we cannot use (unwritable, a file in its place): say which, plainly."""
        return RepositoryError(
            f"cannot create session lock files in {self.directory}:"
            f" {exc.strerror or exc} (it must be a folder this user can write)"
        )

    async def aclose(self) -> None:
        for lock in list(self._held):
            await lock.release()

    def __repr__(self) -> str:
        return f"FileSessionLocks({str(self.directory)!r})"
