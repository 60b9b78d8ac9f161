"""The one mapping between models and tables: a column list per table, in one place.

A table's columns are its model's fields, named alike; each column's kind comes from the
field's type. A dialect stores a few kinds its own way (ids, times, flags, tag lists) and
gives an adapter for each; from those, straight-line functions are generated once per table
that turn a model into statement parameters and a row (read by position in ``columns``
order) back into a model. Rows are rebuilt without validating again: they were written from
validated models and the schema's CHECK constraints guard them.
"""

from __future__ import annotations

import json
import types
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar, get_args, get_origin, get_type_hints

from boternity.models import (
    Bot,
    ChatMessage,
    ChatSession,
    ContextSummary,
    MemoryEntry,
    MemoryEvent,
    PendingExtraction,
    SoulVersion,
)

M = TypeVar("M")

#: The column kinds a dialect may store in its own way (every other value passes as is).
UUID, TIME, FLAG, TAGS = "uuid", "time", "flag", "tags"
_JSON = "json"  # the same on every backend: compact JSON text
Adapter = Callable[[Any], Any]


def _kind(hint: Any) -> tuple[Any, bool]:
    """(kind, nullable) of a field type: a kind name, an enum class, or None (as is)."""
    args = get_args(hint)
    nullable = types.NoneType in args
    if nullable:
        hint = next(a for a in args if a is not types.NoneType)
    if isinstance(hint, type) and issubclass(hint, StrEnum):
        return hint, nullable
    kinds = {uuid.UUID: UUID, datetime: TIME, bool: FLAG, list: TAGS, dict: _JSON}
    return kinds.get(get_origin(hint) or hint), nullable


@dataclass(frozen=True, eq=False)
class Table(Generic[M]):
    name: str
    model: type[M]
    columns: tuple[str, ...]

    def cols(self, alias: str = "") -> str:
        """The column list, each column prefixed with ``alias`` (say ``"m."``)."""
        return ", ".join(alias + c for c in self.columns)

    def kinds(self) -> list[tuple[Any, bool]]:
        hints = get_type_hints(self.model)
        return [_kind(hints[c]) for c in self.columns]


def _table(name: str, model: type[M], columns: str) -> Table[M]:
    t = Table(name, model, tuple(columns.split()))
    assert sorted(t.columns) == sorted(model.__dataclass_fields__), name  # type: ignore[attr-defined]
    return t


BOTS = _table(
    "bots", Bot, "id slug name description status category tags user_id conversation_count"
    " total_tokens_used version_count created_at updated_at last_active_at",
)  # fmt: skip
SOULS = _table("soul_versions", SoulVersion, "id bot_id content hash version message created_at")
SESSIONS = _table(
    "chat_sessions", ChatSession, "id bot_id title started_at ended_at total_input_tokens"
    " total_output_tokens message_count model status last_activity_at",
)  # fmt: skip
MESSAGES = _table(
    "chat_messages", ChatMessage, "id session_id seq role content created_at input_tokens"
    " output_tokens model stop_reason response_ms metadata",
)  # fmt: skip
MEMORIES = _table(
    "session_memories", MemoryEntry, "id bot_id session_id fact category importance"
    " source_message_id superseded_by created_at is_manual",
)  # fmt: skip
PENDING = _table(
    "pending_memory_extractions", PendingExtraction, "id session_id bot_id attempt_count"
    " last_attempt_at next_attempt_at error_message messages_start messages_end created_at",
)  # fmt: skip
SUMMARIES = _table(
    "context_summaries", ContextSummary,
    "id session_id summary messages_start messages_end token_count created_at",
)  # fmt: skip
HISTORY = _table(
    "memory_history", MemoryEvent,
    "id memory_id bot_id event actor fact job_id related_memory_id created_at",
)  # fmt: skip


def _convert(kind: Any, value: str, adapters: Mapping[str, Adapter], scope: dict[str, Any],
             *, out: bool) -> str:  # fmt: skip
    """Source text converting ``value`` (an expression) for one column kind."""
    if isinstance(kind, type) and issubclass(kind, StrEnum):  # its text out, its member back
        scope[kind.__name__] = kind._value2member_map_
        return f"{value}.value" if out else f"{kind.__name__}[{value}]"
    if kind == _JSON:
        return f"dumps({value})" if out else f"loads({value})"
    if adapters.get(kind) is None:
        return value
    scope[f"a_{kind}"] = adapters[kind]
    return f"a_{kind}({value})"


def _column(kind: Any, nullable: bool, value: str, *args: Any, **kwargs: Any) -> str:
    converted = _convert(kind, "v" if nullable else value, *args, **kwargs)
    if nullable and converted != "v":
        return f"(None if (v := {value}) is None else {converted})"
    return value if converted == "v" else converted


def _compile(source: str, scope: dict[str, Any]) -> Any:
    exec(source, scope)  # straight-line code, as dataclasses generate __init__
    return scope["f"]


def make_encoder(t: Table[M], adapters: Mapping[str, Adapter]) -> Callable[[M], list[Any]]:
    """model -> its column values, in ``t.columns`` order, as the dialect binds them."""
    scope: dict[str, Any] = {"dumps": _dumps}
    values = [
        _column(kind, nullable, f"o.{name}", adapters, scope, out=True)
        for name, (kind, nullable) in zip(t.columns, t.kinds(), strict=True)
    ]
    return _compile(f"def f(o):\n    return [{', '.join(values)}]\n", scope)  # type: ignore[no-any-return]


def make_decoder(
    t: Table[M], adapters: Mapping[str, Adapter], fixed: str | None = None
) -> Callable[..., M]:
    """row -> model, trusting the row. With ``fixed`` (a column name), that column's value is
    taken from a second argument instead: a key every row of a query shares, parsed once."""
    scope: dict[str, Any] = {"loads": json.loads, "new": object.__new__, "put": object.__setattr__,
                             "cls": t.model}  # fmt: skip
    lines = []
    for i, (name, (kind, nullable)) in enumerate(zip(t.columns, t.kinds(), strict=True)):
        value = (
            name
            if name == fixed
            else _column(kind, nullable, f"r[{i}]", adapters, scope, out=False)
        )
        lines.append(f"    put(o, {name!r}, {value})\n")
    args = f"r, {fixed}" if fixed else "r"
    return _compile(f"def f({args}):\n    o = new(cls)\n{''.join(lines)}    return o\n", scope)  # type: ignore[no-any-return]


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
