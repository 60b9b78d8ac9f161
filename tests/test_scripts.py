"""The set-up scripts, run for real in a scratch copy of the project (its own .venv, built
from the lock file and uv's cache), so the developer's .venv is never touched."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEV_TOOLS = ("pytest", "mypy", "ruff", "hypothesis")


def scratch_copy(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    (project / "scripts").mkdir(parents=True)
    for name in ("pyproject.toml", "uv.lock", "README.md"):
        shutil.copy2(ROOT / name, project / name)
    shutil.copytree(ROOT / "src", project / "src", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("bootstrap", "demo"):
        shutil.copy2(ROOT / "scripts" / name, project / "scripts" / name)
    return project


def env_for(tmp_path: Path) -> dict[str, str]:
    """No virtualenv or uv project override leaks in: the scratch copy builds its own."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "PYTHONPATH")
        and not k.startswith(("BOTERNITY_", "ANTHROPIC_", "OPENAI_"))
    }
    env["HOME"] = str(tmp_path / "home")
    env["UV_CACHE_DIR"] = os.environ.get("UV_CACHE_DIR") or str(Path.home() / ".cache" / "uv")
    return env


def installed(project: Path) -> set[str]:
    """Distribution names installed in the scratch .venv."""
    site = next((project / ".venv" / "lib").glob("python3*/site-packages"))
    return {p.name.split("-")[0].lower() for p in site.glob("*.dist-info")}


@pytest.mark.slow
def test_demo_installs_the_runtime_dependencies_and_the_local_embedder_only(tmp_path: Path) -> None:
    project = scratch_copy(tmp_path)
    env = env_for(tmp_path)
    demo = subprocess.run(
        [str(project / "scripts" / "demo"), "--db", str(tmp_path / "demo.db")],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert demo.returncode == 0, demo.stderr
    assert "What Demo remembers" in demo.stdout
    # The local embedder is installed with it: the demo finds a memory by meaning.
    assert "by meaning (wordllama/l2_supercat_256), “User works as a nurse”" in demo.stdout
    names = installed(project)
    assert {"boternity", "typer", "rich", "httpx", "wordllama"} <= names
    assert not names & set(DEV_TOOLS), names & set(DEV_TOOLS)

    # scripts/test's set-up (plain bootstrap) installs the dev group ...
    full = subprocess.run(
        [str(project / "scripts" / "bootstrap")], capture_output=True, text=True, env=env
    )
    assert full.returncode == 0, full.stderr
    assert set(DEV_TOOLS) <= installed(project)
    # ... and a later demo run keeps it: --no-dev never uninstalls a developer's tools.
    again = subprocess.run(
        [str(project / "scripts" / "bootstrap"), "--no-dev"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert again.returncode == 0, again.stderr
    assert set(DEV_TOOLS) <= installed(project)


def test_scripts_test_sets_up_the_dev_group() -> None:
    """scripts/test calls bootstrap without --no-dev (its ruff, mypy and pytest come from it)."""
    lines = (ROOT / "scripts" / "test").read_text().splitlines()
    assert "scripts/bootstrap" in lines
