"""The frameworks are optional: boternity never imports them unless an adapter is imported."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_boternity_and_its_cli_never_import_the_frameworks() -> None:
    code = (
        "import sys\n"
        "import boternity, boternity.cli, boternity.cli.app, boternity.integrations\n"
        "loaded = sorted(m for m in sys.modules"
        " if m.split('.')[0] in ('agents', 'langchain_core', 'openai', 'pydantic'))\n"
        "assert not loaded, loaded\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("module", "framework", "extra"),
    [
        ("boternity.integrations.openai_agents", "agents", "openai-agents"),
        ("boternity.integrations.langchain", "langchain_core", "langchain"),
    ],
)
def test_a_missing_framework_names_the_extra(
    module: str, framework: str, extra: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib

    for name in list(sys.modules):
        if name == module or name.split(".")[0] == framework:
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, framework, None)
    with pytest.raises(ImportError, match=rf"pip install 'boternity\[{extra}\]'"):
        importlib.import_module(module)
