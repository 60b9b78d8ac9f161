"""Small formatting shared by every layer."""

from __future__ import annotations


def format_size(n: int) -> str:
    """A byte count for people: ``512 B``, ``1.5 KiB``, ``3.2 MiB``, ``1.0 GiB``."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"
