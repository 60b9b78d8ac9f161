"""The README as a new user meets it: its Python blocks run as pasted, its links stay inside
the repository."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.conftest import CLEAN_ENV

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
#: ```python blocks; an info string after the language ("needs-openai-api-key") names what
#: the block needs that a test cannot give it: such a block is compiled, not run.
_BLOCK = re.compile(r"^```python([^\n]*)\n(.*?)^```", re.S | re.M)
_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)|`(\.\./[^`]+)`")


def python_blocks(page: Path = README) -> list[tuple[str, str]]:
    return [(info.strip(), body) for info, body in _BLOCK.findall(page.read_text())]


def run_as_pasted(script: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``python -W error SCRIPT`` in the script's folder, with no terminal on stdin."""
    return subprocess.run(
        [sys.executable, "-W", "error", str(script)],
        cwd=script.parent,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def test_every_python_block_is_a_whole_program() -> None:
    """No top-level ``await``/``async with`` and no undefined names a paste would hit:
    each block compiles as a module on its own."""
    blocks = python_blocks()
    assert len(blocks) >= 4
    for i, (_, body) in enumerate(blocks):
        compile(body, f"README block {i}", "exec")


@pytest.mark.slow
def test_python_blocks_run_as_pasted_twice(tmp_path: Path) -> None:
    """Each runnable block, in README order, in a fresh folder and HOME with no API keys (the
    offline provider), twice: a second run must work as well as the first, and each prints
    something."""
    env = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV}
    env.update(HOME=str(tmp_path / "home"), BOTERNITY_DATA_DIR=str(tmp_path / "data"))
    env["PYTHONUTF8"] = "1"
    runnable = [(i, body) for i, (info, body) in enumerate(python_blocks()) if not info]
    assert len(runnable) >= 3
    for round_ in (1, 2):
        for i, body in runnable:
            script = tmp_path / f"block{i}.py"
            script.write_text(body)
            done = run_as_pasted(script, env)
            assert done.returncode == 0, (round_, i, done.stderr)
            assert done.stdout.strip(), (round_, i)
    out = run_as_pasted(tmp_path / f"block{runnable[1][0]}.py", env).stdout
    assert "Luna remembers: User lives in Berlin" in out  # the worker step made a memory
    assert not (tmp_path / "home" / ".boternity").exists()  # only the README's own bots.db


@pytest.mark.slow
def test_the_users_page_example_runs_as_pasted_twice(tmp_path: Path) -> None:
    """docs/users.md's example: a user's memories are theirs, erasure and export work."""
    env = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV}
    env.update(HOME=str(tmp_path / "home"), PYTHONUTF8="1")
    [(info, body)] = python_blocks(ROOT / "docs" / "users.md")
    assert info == ""
    script = tmp_path / "users.py"
    script.write_text(body)
    for round_ in (1, 2):
        done = run_as_pasted(script, env)
        assert done.returncode == 0, (round_, done.stderr)
        assert "user_id='discord:ana'" in done.stdout and "erased 5 rows" in done.stdout


def test_links_stay_inside_the_repository() -> None:
    text = README.read_text()
    targets = [a or b for a, b in _LINK.findall(text)]
    assert targets
    for target in targets:
        if re.match(r"[a-z]+://", target):
            continue
        path = (ROOT / target).resolve()
        assert path.is_relative_to(ROOT), target
        assert path.exists(), target
    assert "../shared" not in text
