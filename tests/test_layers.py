"""Nothing above ``boternity.backends`` knows which backend it talks to, and the storage core
(``boternity.storage``) depends on no backend.

Every module of ``src/boternity`` outside ``backends/`` is read with ``ast`` (imports inside
functions and ``TYPE_CHECKING`` blocks count too): it must not import a database driver or a
backend's own modules, nor branch on a store's backend (``store.backend == …``,
``getattr(store, "path")``, ``isinstance(store, SqliteStore)``). What differs by backend is
a capability of ``Store`` (see ``boternity.repositories``), chosen in
``boternity.backends.backend_for``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import boternity

PACKAGE = Path(boternity.__file__).parent
BACKENDS = PACKAGE / "backends"
DRIVERS = {"sqlite3", "asyncpg", "psycopg", "psycopg2", "aiosqlite"}
#: The one name above the backends may import from ``boternity.backends``.
REGISTRY = {"backend_for"}
#: Attributes a backend's store has and the Store Protocol does not.
BACKEND_ATTRIBUTES = {"path", "url", "read_url", "db", "writer", "readers"}


def _above_backends() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if BACKENDS not in p.parents)


def _problems(source: str) -> list[str]:
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        where = f"line {getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                if top in DRIVERS:
                    found.append(f"{where}: import {alias.name}")
                if alias.name.startswith("boternity.backends"):
                    found.append(f"{where}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] in DRIVERS:
                found.append(f"{where}: from {node.module} import …")
            if node.module.startswith("boternity.backends."):
                found.append(f"{where}: from {node.module} import …")
            if node.module == "boternity.backends":
                found.extend(
                    f"{where}: from boternity.backends import {a.name}"
                    for a in node.names
                    if a.name not in REGISTRY
                )
        elif isinstance(node, ast.Compare):
            operands = [n for side in (node.left, *node.comparators) for n in ast.walk(side)]
            if any(isinstance(n, ast.Attribute) and n.attr == "backend" for n in operands):
                found.append(f"{where}: compares .backend")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in ("getattr", "hasattr") and len(node.args) >= 2:
                name = node.args[1]
                if isinstance(name, ast.Constant) and name.value in BACKEND_ATTRIBUTES:
                    found.append(f"{where}: {node.func.id}(…, {name.value!r})")
            if node.func.id in ("isinstance", "issubclass") and len(node.args) == 2:
                text = ast.unparse(node.args[1])
                if any(word in text for word in ("Sqlite", "Postgres", "Pg")):
                    found.append(f"{where}: {node.func.id}(…, {text})")
    return found


@pytest.mark.parametrize(
    "path", _above_backends(), ids=lambda p: str(p.relative_to(PACKAGE.parent))
)
def test_no_module_above_the_backends_knows_which_backend_it_has(path: Path) -> None:
    problems = _problems(path.read_text(encoding="utf-8"))
    assert not problems, f"{path.relative_to(PACKAGE.parent)}: {problems}"


@pytest.mark.parametrize(
    "source",
    [
        "import sqlite3",
        "def f():\n    import asyncpg",
        "from sqlite3 import connect",
        "from boternity.backends.sqlite.locks import FileSessionLocks",
        "from boternity.backends import sqlite",
        "import boternity.backends.postgres",
        "if store.backend == 'sqlite': pass",
        "x = 'postgresql' in (store.backend,)",
        "path = getattr(store, 'path', None)",
        "ok = isinstance(store, SqliteStore)",
    ],
)
def test_the_check_catches_each_way_of_asking(source: str) -> None:
    assert _problems(source)


def test_the_check_lets_the_registry_and_capabilities_through() -> None:
    assert not _problems(
        "from boternity.backends import backend_for\n"
        "locks = store.session_locks()\n"
        "print(store.backend)\n"
    )


#: What the storage core may import from boternity: the layers below it, and itself.
STORAGE_MAY_IMPORT = {"errors", "ids", "models", "repositories", "text", "storage"}


def _boternity_imports(source: str) -> set[str]:
    """The first name after ``boternity.`` of every boternity module ``source`` imports."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        found.update(n.split(".")[1] for n in names if n.startswith("boternity."))
    return found


@pytest.mark.parametrize(
    "path",
    sorted((PACKAGE / "storage").rglob("*.py")),
    ids=lambda p: str(p.relative_to(PACKAGE.parent)),
)
def test_the_storage_core_depends_on_no_backend_and_nothing_above_it(path: Path) -> None:
    """The core is the storage rules once: a backend plugs into it, never the reverse."""
    unexpected = _boternity_imports(path.read_text(encoding="utf-8")) - STORAGE_MAY_IMPORT
    assert not unexpected, f"{path.relative_to(PACKAGE.parent)} imports {sorted(unexpected)}"


def test_the_storage_check_catches_an_upward_import() -> None:
    assert _boternity_imports("from boternity.backends.sqlite import pool\n") == {"backends"}
    assert _boternity_imports("def f():\n    import boternity.chat.engine\n") == {"chat"}
