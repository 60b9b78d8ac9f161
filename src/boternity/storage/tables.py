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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, Protocol, TypeVar, get_args, get_origin, get_type_hints

from boternity.models import (
    Bot,
    ChatMessage,
    ChatSession,
    ContextSummary,
    MemoryEntry,
    MemoryEvent,
    PendingExtraction,
    SoulVersion,
    json_text,
)

M = TypeVar("M")

#: The column kinds a dialect may store in its own way (every other value passes as is),
#: and UUIDS, how it binds a list of ids (see sql.IDS).
UUID, TIME, FLAG, TAGS, UUIDS = "uuid", "time", "flag", "tags", "uuids"
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

    def kinds(self) -> list[tuple[str, tuple[Any, bool]]]:
        """(column, (kind, nullable)) for each column."""
        hints = get_type_hints(self.model)
        return [(c, _kind(hints[c])) for c in self.columns]


def _table(name: str, model: type[M], columns: str) -> Table[M]:
    t = Table(name, model, tuple(columns.split()))
    assert sorted(t.columns) == sorted(model.__dataclass_fields__), name  # type: ignore[attr-defined]
    return t


BOTS = _table("bots", Bot, """id slug name description status category tags user_id
    conversation_count total_tokens_used version_count created_at updated_at last_active_at""")  # fmt: skip
SOULS = _table("soul_versions", SoulVersion, "id bot_id content hash version message created_at")
SESSIONS = _table("chat_sessions", ChatSession, """id bot_id title started_at ended_at
    total_input_tokens total_output_tokens message_count model status last_activity_at
    user_id""")  # fmt: skip
MESSAGES = _table("chat_messages", ChatMessage, """id session_id seq role content created_at
    input_tokens output_tokens model stop_reason response_ms metadata""")  # fmt: skip
MEMORIES = _table("session_memories", MemoryEntry, """id bot_id session_id fact category
    importance source_message_id superseded_by created_at is_manual user_id""")  # fmt: skip
PENDING = _table("pending_memory_extractions", PendingExtraction, """id session_id bot_id
    attempt_count last_attempt_at next_attempt_at error_message messages_start messages_end
    created_at""")  # fmt: skip
SUMMARIES = _table("context_summaries", ContextSummary,
    "id session_id summary messages_start messages_end token_count created_at")  # fmt: skip
HISTORY = _table("memory_history", MemoryEvent,
    "id memory_id bot_id event actor fact job_id related_memory_id created_at user_id")  # fmt: skip


def _expr(value: str, kind: Any, nullable: bool, adapters: Mapping[str, Adapter],
          scope: dict[str, Any], *, out: bool) -> str:  # fmt: skip
    """Source text converting ``value`` (an expression) for one column, None passing as is."""
    if isinstance(kind, type) and issubclass(kind, StrEnum):  # its text out, its member back
        scope[kind.__name__] = kind._value2member_map_
        convert = "{}.value" if out else kind.__name__ + "[{}]"
    elif kind == _JSON:
        convert = "dumps({})" if out else "loads({})"
    elif adapters.get(kind) is not None:
        scope[f"a_{kind}"] = adapters[kind]
        convert = f"a_{kind}({{}})"
    else:
        return value
    if nullable:
        return f"(None if (v := {value}) is None else {convert.format('v')})"
    return convert.format(value)


def _compile(source: str, scope: dict[str, Any]) -> Any:
    exec(source, scope)  # straight-line code, as dataclasses generate __init__
    return scope["f"]


def make_encoder(t: Table[M], adapters: Mapping[str, Adapter]) -> Callable[[M], list[Any]]:
    """model -> its column values, in ``t.columns`` order, as the dialect binds them."""
    scope: dict[str, Any] = {"dumps": json_text}
    values = [_expr(f"o.{name}", *kind, adapters, scope, out=True) for name, kind in t.kinds()]
    return _compile(f"def f(o):\n    return [{', '.join(values)}]\n", scope)  # type: ignore[no-any-return]


def _twin(model: type[Any]) -> type[Any] | None:
    """A plain class with the same slots as ``model`` (a frozen dataclass with slots), or
    None if ``model`` has none or the layouts differ. An instance of it is filled by plain
    attribute stores (the interpreter writes a slot directly: about a third of the cost of
    calling each slot's descriptor, or a sixth of ``object.__setattr__``), then becomes a
    ``model`` by ``__class__`` assignment, which CPython allows only between classes of the
    same layout (it checks, and raises TypeError otherwise). The result is the same object
    as one the model's constructor made: same type, fields, equality and hash."""
    slots = model.__dict__.get("__slots__")
    if not slots or "__dict__" in slots:
        return None
    twin = type(f"_{model.__name__}Row", (), {"__slots__": tuple(slots)})
    try:
        probe: Any = object.__new__(twin)
        probe.__class__ = model
    except TypeError:
        return None
    return twin


def _builder(model: type[Any], scope: dict[str, Any]) -> tuple[str, Callable[[str, str], str], str]:
    """Source text making a new (frozen) ``model`` instance ``o`` field by field: the first
    line, a function of (field, value expression) giving the line that sets one field, and
    the last line. Through the model's twin (see _twin) where it has one; else each slot's
    own descriptor (twice as fast as ``object.__setattr__``), or ``object.__setattr__``."""
    scope["new"], scope["cls"] = object.__new__, model
    twin = _twin(model)
    if twin is not None:
        scope["twin"] = twin
        return (
            "    o = new(twin)\n",
            lambda name, v: f"    o.{name} = {v}\n",
            ("    o.__class__ = cls\n"),
        )

    def put(name: str, value: str) -> str:
        slot = model.__dict__.get(name)
        if slot is not None and hasattr(slot, "__set__") and "__slots__" in model.__dict__:
            scope[f"set_{name}"] = slot.__set__
            return f"    set_{name}(o, {value})\n"
        scope["put"] = object.__setattr__
        return f"    put(o, {name!r}, {value})\n"

    return "    o = new(cls)\n", put, ""


class Decoder(Protocol[M]):
    """Rebuilds models from rows (see make_decoder)."""

    def __call__(self, row: Any, *fixed: Any) -> M: ...

    def many(self, rows: Iterable[Any], *fixed: Any) -> list[M]:
        """Every row, in order; each row has exactly the table's columns."""
        ...


def decode_all(decode: Callable[[Any], M], rows: Iterable[Any]) -> list[M]:
    """Every row through ``decode``: in one loop where it is a Decoder (``.many``)."""
    many = getattr(decode, "many", None)
    return many(rows) if many is not None else [decode(r) for r in rows]


def make_decoder(
    t: Table[M], adapters: Mapping[str, Adapter], fixed: str | None = None
) -> Decoder[M]:
    """row -> model, trusting the row; ``.many``: rows -> models, one loop (no call per
    row). With ``fixed`` (a column name), that column's value is taken from a further
    argument instead: a key every row of a query shares, parsed once."""
    scope: dict[str, Any] = {"loads": json.loads}
    first, put, last = _builder(t.model, scope)
    names = ", ".join(f"c{i}" for i in range(len(t.columns)))
    build = (
        first
        + "".join(
            put(name, name if name == fixed else _expr(f"c{i}", *kind, adapters, scope, out=False))
            for i, (name, kind) in enumerate(t.kinds())
        )
        + last
    )
    args = f", {fixed}" if fixed else ""
    loop = "".join("    " + line + "\n" for line in build.splitlines())
    # One row: unpacked into locals at once (one opcode, not one subscript per column); a
    # row may carry more columns after the table's own (a search hit's), which are left out.
    source = (
        f"def f(r{args}):\n    {names}, = r[:{len(t.columns)}]\n{build}    return o\n"
        f"def many(rows{args}):\n    out = []\n    append = out.append\n"
        f"    for {names} in rows:\n{loop}        append(o)\n    return out\n"
        "f.many = many\n"
    )
    return _compile(source, scope)  # type: ignore[no-any-return]


def copy_with(model: type[M], name: str) -> Callable[[M, Any], M]:
    """A copy of a model with field ``name`` replaced, without validating again: a saved
    message with its seq, say, whose (possibly 1 MB) content was checked when it was built."""
    scope: dict[str, Any] = {}
    first, put, last = _builder(model, scope)
    fields = list(model.__dataclass_fields__)  # type: ignore[attr-defined]
    body = "".join(put(f, "value" if f == name else "c." + f) for f in fields)
    return _compile(f"def f(c, value):\n{first}{body}{last}    return o\n", scope)  # type: ignore[no-any-return]
