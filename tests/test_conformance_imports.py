"""The conformance suite stays backend-neutral: it may only use the public package."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ALLOWED = {
    "boternity",
    "boternity.models",
    "boternity.errors",
    "boternity.repositories",
    "tests.conformance",
}
SUITE = Path(__file__).parent / "conformance"


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("path", sorted(SUITE.glob("*.py")), ids=lambda p: p.name)
def test_conformance_tests_import_only_the_public_package(path: Path) -> None:
    ours = {m for m in _imports(path) if m.split(".")[0] in ("boternity", "tests")}
    assert ours <= ALLOWED, f"{path.name} imports {sorted(ours - ALLOWED)}"
