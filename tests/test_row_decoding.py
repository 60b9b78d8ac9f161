"""Rows read back become models indistinguishable from constructed ones (storage/tables.py
builds them through a twin class of the same layout, without validating again)."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from typing import Any

import pytest

from boternity.backends.sqlite.dialect import SQLITE
from boternity.models import ChatMessage, MemoryActor, MemoryEvent, MemoryEventKind
from boternity.storage.tables import (
    BOTS,
    HISTORY,
    MEMORIES,
    MESSAGES,
    PENDING,
    SESSIONS,
    SOULS,
    SUMMARIES,
    Table,
    _twin,
    copy_with,
)
from tests.test_models import (
    BOT_ID,
    _bot,
    _memory,
    _message,
    _pending,
    _session,
    _soul,
    _summary,
)


def _event() -> MemoryEvent:
    return MemoryEvent(memory_id=BOT_ID, bot_id=BOT_ID, event=MemoryEventKind.ADDED,
                       actor=MemoryActor.USER, fact="f")  # fmt: skip


def _hash(obj: object) -> int | None:
    """The hash, or None for a model holding a list or dict (unhashable, however built)."""
    try:
        return hash(obj)
    except TypeError:
        return None


CASES: list[tuple[Table[Any], Any]] = [
    (BOTS, _bot), (SOULS, _soul), (SESSIONS, _session),
    (MESSAGES, lambda: _message(metadata={"a": [1, "é"]}, seq=4, model="m")),
    (MEMORIES, _memory), (PENDING, _pending), (SUMMARIES, _summary), (HISTORY, _event),
]  # fmt: skip


@pytest.mark.parametrize(("table", "make"), CASES, ids=[t.name for t, _ in CASES])
def test_a_decoded_row_is_the_model_it_was_written_from(table: Table[Any], make: Any) -> None:
    assert _twin(table.model) is not None  # the fast path stays available for every model
    made = make()
    row = SQLITE.encoder(table)(made)
    got = SQLITE.decoder(table)(row)
    assert type(got) is table.model
    assert got == made and _hash(got) == _hash(made) and repr(got) == repr(made)
    assert pickle.loads(pickle.dumps(got)) == made and copy.deepcopy(got) == made
    assert dataclasses.replace(got) == made
    assert SQLITE.decoder(table).many([row, row]) == [made, made]
    with pytest.raises(dataclasses.FrozenInstanceError):
        got.id = BOT_ID


def test_a_copy_with_one_field_changed_is_a_model() -> None:
    made = _message()
    got = copy_with(ChatMessage, "seq")(made, 7)
    assert type(got) is ChatMessage and got == dataclasses.replace(made, seq=7)
    with pytest.raises(dataclasses.FrozenInstanceError):
        got.seq = 8  # type: ignore[misc]


def test_a_class_of_another_layout_has_no_twin() -> None:
    @dataclasses.dataclass(frozen=True, slots=True, weakref_slot=True)
    class Weak:
        a: int

    @dataclasses.dataclass(frozen=True)
    class Plain:
        a: int

    assert _twin(Weak) is None and _twin(Plain) is None
