"""``bnity``: the command-line front end.

This module must stay import-light: ``bnity --help`` imports it and the Typer app only.
The store, Rich tables and asyncio are imported inside the commands that need them.
"""

from __future__ import annotations

__all__ = ["main"]


def main() -> None:
    """Console-script entry point (``bnity``)."""
    from boternity.cli.app import app
    from boternity.cli.completion import init_if_completing

    init_if_completing()

    app(prog_name="bnity")
