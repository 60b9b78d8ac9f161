"""Rendering: JSON encoding of models, Rich tables, text cut on characters.

Imported only inside commands (it pulls in Rich).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import unicodedata
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

ELLIPSIS = "…"

STATUS_STYLES = {
    "active": "green",
    "completed": "cyan",
    "crashed": "red",
    "disabled": "yellow",
    "archived": "dim",
    "exhausted": "red",
    "due": "green",
    "waiting": "yellow",
}


# --- text ---------------------------------------------------------------------------------------


def ellipsis(text: str | None, width: int, *, single_line: bool = True) -> str:
    """``text`` cut to at most ``width`` characters (code points, never bytes), ending in "…"
    when cut. Combining marks are kept with their base character; with ``single_line`` all
    runs of whitespace (newlines included) become one space first."""
    if text is None:
        return ""
    if single_line:
        text = " ".join(text.split())
    if width < 1:
        return ""
    if len(text) <= width:
        return text
    cut = width - 1
    # Do not leave a base character without its accents, or end on a joiner (ZWJ emoji).
    while cut > 0 and (unicodedata.combining(text[cut]) or text[cut - 1] == "\u200d"):
        cut -= 1
    return text[:cut].rstrip() + ELLIPSIS


def short_ids(
    ids: Iterable[uuid.UUID], universe: Iterable[uuid.UUID], *, min_len: int = 8
) -> dict[uuid.UUID, str]:
    """For each id, its shortest prefix (at least ``min_len`` characters of the hyphenated
    form) that no other id in ``universe`` shares: what `bnity` accepts back as an id."""
    others = sorted({str(u) for u in universe} | {str(u) for u in ids})
    out: dict[uuid.UUID, str] = {}
    for u in ids:
        s = str(u)
        i = _bisect(others, s)
        need = min_len
        for j in (i - 1, i + 1):
            if 0 <= j < len(others):
                need = max(need, _common_prefix(s, others[j]) + 1)
        prefix = s[: min(need, len(s))]
        if prefix.endswith("-"):
            prefix = s[: len(prefix) + 1]
        out[u] = prefix
    return out


def _bisect(items: Sequence[str], value: str) -> int:
    import bisect

    return bisect.bisect_left(items, value)


def _common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def fmt_time(value: datetime | None) -> str:
    """UTC, to the minute (the column header says UTC)."""
    if value is None:
        return "-"
    return value.strftime("%Y-%m-%d %H:%M")


def fmt_date(value: datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d")


def fmt_duration(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def plural(n: int, word: str, words: str | None = None) -> str:
    return f"{n} {word if n == 1 else (words or word + 's')}"


def stars(importance: int) -> str:
    return "★" * importance + "☆" * (5 - importance)


# --- JSON ---------------------------------------------------------------------------------------


def to_jsonable(value: Any) -> Any:
    """Models become objects keyed by their field names; ids are strings, times ISO 8601."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return to_jsonable(value.value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value


def dumps(value: Any) -> str:
    return json.dumps(to_jsonable(value), ensure_ascii=False, indent=2)


def print_json(value: Any) -> None:
    sys.stdout.write(dumps(value) + "\n")
    sys.stdout.flush()


# --- Rich ---------------------------------------------------------------------------------------


def console(*, stderr: bool = False) -> Console:
    """A Rich console. On a terminal it fits the window; into a pipe or file nothing is
    wrapped (Rich would otherwise assume 80 columns), unless COLUMNS says otherwise."""
    import os

    stream = sys.stderr if stderr else sys.stdout
    width: int | None = None
    if not (hasattr(stream, "isatty") and stream.isatty()):
        columns = os.environ.get("COLUMNS", "")
        width = int(columns) if columns.isdigit() and int(columns) > 0 else 1000
    # highlight=False: never recolour numbers or URLs inside user text.
    return Console(stderr=stderr, highlight=False, soft_wrap=False, width=width)


def table(*columns: str, title: str | None = None) -> Table:
    """A plain table. A column name ending in '>' is right-aligned and never wrapped
    (numbers); one ending in '!' is never wrapped (ids, times); others fold when narrow."""
    t = Table(box=box.SIMPLE_HEAD, title=title, title_justify="left", pad_edge=False)
    for name in columns:
        if name.endswith(">"):
            t.add_column(name[:-1], justify="right", no_wrap=True)
        elif name.endswith("!"):
            t.add_column(name[:-1], no_wrap=True)
        else:
            t.add_column(name, overflow="fold")
    return t


def styled(value: str) -> Text:
    """A status word in its colour."""
    return Text(value, style=STATUS_STYLES.get(value, ""))


def text(value: object) -> Text:
    """User text as a literal (never parsed as Rich markup)."""
    return Text("" if value is None else str(value))


def key_values(rows: Sequence[tuple[str, object]]) -> Table:
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold", no_wrap=True)
    t.add_column(overflow="fold")
    for key, value in rows:
        t.add_row(key, value if isinstance(value, Text) else text(value))
    return t
