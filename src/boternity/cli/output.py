"""Rendering: JSON encoding of models, Rich tables, and
:func:`visible`, the one rule for any stored or model-produced text shown on a terminal.

Rich is imported inside the functions that need it, so the error path of every command
(``runtime``) can use :func:`visible` without the cost of Rich.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import functools
import io
import json
import re
import sys
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from enum import Enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

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

#: What a terminal would act on instead of showing: C0 controls but newline and tab, DEL,
#: C1 controls (ESC, CSI, OSC, BEL... start screen-clearing, retitling, hyperlink and
#: clipboard sequences) and the bidi overrides/isolates that reorder what follows them.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _shown(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(value: object) -> str:
    """Stored or model-produced text made harmless for a terminal: every control character
    that could move the cursor, clear the screen, retitle the window or reorder the line is
    shown as an escape (``\\x1b``, ``\\u202e``); newlines and tabs stay (a CRLF becomes a
    newline). Only for display: ``--json`` and exports keep the exact text."""
    text = "" if value is None else str(value)
    if "\r\n" in text:
        text = text.replace("\r\n", "\n")
    return _UNSAFE.sub(_shown, text)


def short_ids(
    ids: Iterable[uuid.UUID], universe: Iterable[uuid.UUID], *, min_len: int = 8
) -> dict[uuid.UUID, str]:
    """For each id, its shortest prefix (at least ``min_len`` characters of the hyphenated
    form) that no other id in ``universe`` shares: what `bnity` accepts back as an id."""
    others = sorted({str(u) for u in universe} | {str(u) for u in ids})
    out: dict[uuid.UUID, str] = {}
    for u in ids:
        s = str(u)
        i = bisect.bisect_left(others, s)
        need = min_len
        for j in (i - 1, i + 1):
            if 0 <= j < len(others):
                need = max(need, _common_prefix(s, others[j]) + 1)
        prefix = s[: min(need, len(s))]
        if prefix.endswith("-"):
            prefix = s[: len(prefix) + 1]
        out[u] = prefix
    return out


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


def echo(message: str, *, err: bool = False, nl: bool = True) -> None:
    """One message built from stored or user text, on stdout (or stderr), made
    :func:`visible`."""
    stream = sys.stderr if err else sys.stdout
    stream.write(visible(message) + ("\n" if nl else ""))
    stream.flush()


def echo_exact(body: str, *, nl: bool = True) -> None:
    """Text meant to be kept (``soul show --raw``, ``session export``): exact into a pipe or
    a file, made :func:`visible` on a terminal, where it would otherwise be obeyed."""
    if sys.stdout.isatty():
        body = visible(body)
    sys.stdout.write(body + ("\n" if nl else ""))
    sys.stdout.flush()


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
    return _safe_console_class()(stderr=stderr, highlight=False, soft_wrap=False, width=width)


@functools.cache
def _safe_console_class() -> type[Console]:
    """A Console that applies :func:`visible` to every piece of text it writes (never to its
    own control sequences): the safety net under ``text()``/``esc()``, so a renderable built
    from raw user text (a Markdown reply, a status line) still cannot drive the terminal."""
    from rich.console import Console
    from rich.segment import Segment

    class SafeConsole(Console):
        def _render_buffer(self, buffer: Iterable[Segment]) -> str:
            return super()._render_buffer(
                s if s.control else Segment(visible(s.text), s.style) for s in buffer
            )

    return SafeConsole


def table(*columns: str, title: str | None = None) -> Table:
    """A plain table. A column name ending in '>' is right-aligned and never wrapped
    (numbers); one ending in '!' is never wrapped (ids, times); others fold when narrow."""
    from rich import box
    from rich.table import Table

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
    from rich.text import Text

    return Text(value, style=STATUS_STYLES.get(value, ""))


def esc(value: str) -> str:
    """User text made safe to embed in a Rich markup string: markup shown literally, control
    characters made visible."""
    from rich.markup import escape

    return escape(visible(value))


def text(value: object, style: str = "") -> Text:
    """User text as a literal Rich ``Text`` (never parsed as markup, controls made visible)."""
    from rich.text import Text

    return Text(visible(value), style=style)


def key_values(rows: Sequence[tuple[str, object]]) -> Table:
    from rich.table import Table
    from rich.text import Text

    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold", no_wrap=True)
    t.add_column(overflow="fold")
    for key, value in rows:
        t.add_row(key, value if isinstance(value, Text) else text(value))
    return t


# --- pager --------------------------------------------------------------------------------------

DEFAULT_PAGER = "less"
#: less quits when the text fits on one screen (F), shows colours (R) and leaves the text on
#: the screen when it quits (X): what git sets.
DEFAULT_LESS = "FRX"


class _TerminalBuffer(io.StringIO):
    """Collects what would go to the terminal: it says it is one, so Rich keeps colours
    and ``visible``/``echo_exact`` keep treating the text as shown on a terminal."""

    def isatty(self) -> bool:
        return True


def pager_command() -> str | None:
    """The pager, as git chooses it: ``$PAGER``, else ``less`` (with ``LESS=FRX`` unless set);
    None when it is switched off (``PAGER`` empty or ``cat``)."""
    import os

    command = os.environ.get("PAGER")
    if command is None:
        return DEFAULT_PAGER
    command = command.strip()
    return None if command in ("", "cat") else command


@contextlib.contextmanager
def paged(enabled: bool = True) -> Iterator[None]:
    """Send what is printed inside through the pager when stdout is a terminal (and
    ``enabled``: ``--no-pager`` turns it off); otherwise print it as usual.

    The text is collected first and handed to the pager whole; a pager that cannot start
    means the text is printed directly."""
    command = pager_command() if enabled else None
    if command is None or not sys.stdout.isatty():
        yield
        return
    import os
    import subprocess

    real = sys.stdout
    buffer = _TerminalBuffer()
    sys.stdout = buffer
    try:
        yield
    finally:
        sys.stdout = real
    body = buffer.getvalue()
    env = dict(os.environ)
    env.setdefault("LESS", DEFAULT_LESS)
    try:
        # A shell runs it, like git: PAGER may carry options ("less -S") or be a pipeline.
        done = subprocess.run(
            command, shell=True, input=body.encode("utf-8", "replace"), env=env, check=False
        )
        started = done.returncode not in (126, 127)  # the shell could not run it
    except OSError:
        started = False
    except KeyboardInterrupt:
        started = True
    if not started:
        real.write(body)
        real.flush()
