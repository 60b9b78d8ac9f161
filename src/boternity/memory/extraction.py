"""Turning a range of messages into memories: the request, the reply parser, the plan.

The model sees the messages of the job's range with their seq numbers, and the bot's live
memories with short ids (m1, m2, …), and answers with a JSON array of
``{fact, category, importance, source_seq, supersedes}``. Replies are parsed leniently
(code fences, prose around the array); invalid entries are skipped and logged; a reply with
no parseable array is an error, so the job is retried rather than silently "empty".
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from boternity.errors import BoternityError
from boternity.llm.base import ChatTurn, CompletionRequest
from boternity.models import (
    ChatMessage,
    MemoryCategory,
    MemoryEntry,
    MessageRole,
    PendingExtraction,
)

log = logging.getLogger(__name__)

EXTRACTION_SYSTEM = """\
You maintain the long-term memory of a chat assistant. Read the conversation excerpt and \
extract the facts about the user worth remembering in future conversations: preferences, \
personal facts, decisions, lasting context, and corrections of earlier facts.

Reply with ONLY a JSON array (no prose). Each item:
  {"fact": "<one short third-person sentence>",
   "category": "preference" | "fact" | "decision" | "context" | "correction",
   "importance": <1-5, 5 = essential>,
   "source_seq": <the [seq] number of the message the fact comes from>,
   "supersedes": "<id of a known memory this fact replaces, e.g. m2>" or null}

Rules: do not repeat a known memory; when the user corrects or updates a known memory, \
give the new fact and put the old memory's id in "supersedes"; ignore small talk and what \
the assistant said about itself. Reply [] when nothing is worth remembering."""

MAX_FACT_CHARS = 500


class ExtractionError(BoternityError):
    """The model's reply could not be used (no JSON array in it): the job is retried."""


@dataclass(frozen=True, slots=True)
class ExtractedFact:
    fact: str
    category: MemoryCategory
    importance: int
    source_seq: int | None = None
    supersedes: str | None = None


def short_ids(live: Sequence[MemoryEntry]) -> dict[str, MemoryEntry]:
    """m1, m2, … for the live memories shown to the model (short, hard to garble)."""
    return {f"m{i}": m for i, m in enumerate(live, start=1)}


def build_request(
    model: str,
    messages: Sequence[ChatMessage],
    known: dict[str, MemoryEntry],
    *,
    max_tokens: int = 2048,
) -> CompletionRequest:
    lines = ["Known memories:"]
    lines += [f"[{sid}] ({m.category}) {m.fact}" for sid, m in known.items()] or ["(none)"]
    lines += ["", "Conversation excerpt:"]
    for m in messages:
        if m.role is not MessageRole.SYSTEM and m.content.strip():
            lines.append(f"[{m.seq}] {m.role.value}: {m.content}")
    lines += ["", "Reply with the JSON array now."]
    return CompletionRequest(
        model=model,
        system=EXTRACTION_SYSTEM,
        messages=[ChatTurn("user", "\n".join(lines))],
        max_tokens=max_tokens,
        temperature=0.0,
    )


_FENCE = re.compile(r"```[a-zA-Z0-9_-]*\s*\n?(.*?)```", re.DOTALL)


def _find_array(text: str) -> list[object] | None:
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    decoder = json.JSONDecoder()
    for candidate in candidates:
        stripped = candidate.strip()
        for start in (i for i, ch in enumerate(stripped) if ch == "["):
            try:
                value, _ = decoder.raw_decode(stripped, start)
            except json.JSONDecodeError:
                continue
            if isinstance(value, list):
                return value
    return None


def parse_reply(text: str) -> list[ExtractedFact]:
    """The facts in a model reply. Raises ExtractionError when there is no JSON array."""
    items = _find_array(text)
    if items is None:
        preview = text.strip()[:120]
        raise ExtractionError(f"the reply contained no JSON array: {preview!r}")
    facts: list[ExtractedFact] = []
    for index, item in enumerate(items):
        try:
            facts.append(_entry(item))
        except (TypeError, ValueError, KeyError) as exc:
            log.warning("skipping extracted entry %d: %s", index, exc)
    return facts


def _entry(item: object) -> ExtractedFact:
    if not isinstance(item, dict):
        raise TypeError(f"expected an object, got {type(item).__name__}")
    fact = item["fact"]
    if not isinstance(fact, str) or not fact.strip():
        raise ValueError("empty or non-text fact")
    fact = " ".join(fact.split())[:MAX_FACT_CHARS]
    category = MemoryCategory(str(item.get("category", "fact")).strip().lower())
    raw_importance = item.get("importance", 3)
    if isinstance(raw_importance, bool) or not isinstance(raw_importance, int | float):
        raise ValueError(f"importance {raw_importance!r} is not a number")
    importance = min(5, max(1, round(raw_importance)))
    seq = item.get("source_seq")
    source_seq = seq if isinstance(seq, int) and not isinstance(seq, bool) else None
    supersedes = item.get("supersedes")
    return ExtractedFact(
        fact=fact,
        category=category,
        importance=importance,
        source_seq=source_seq,
        supersedes=supersedes.strip()
        if isinstance(supersedes, str) and supersedes.strip()
        else None,
    )


_TRAILING = re.compile(r"[\s.!?;:,…]+$")


def normalise(fact: str) -> str:
    """The form two facts are compared in: case, inner whitespace and trailing punctuation
    do not make a fact new."""
    return _TRAILING.sub("", " ".join(fact.casefold().split()))


@dataclass(frozen=True, slots=True)
class Plan:
    memories: list[MemoryEntry]
    supersedes: dict[uuid.UUID, uuid.UUID]  # new memory id -> live memory it replaces
    skipped_duplicates: int


def plan_memories(
    job: PendingExtraction,
    messages: Sequence[ChatMessage],
    known: dict[str, MemoryEntry],
    facts: Sequence[ExtractedFact],
) -> Plan:
    """What to save: provenance resolved, duplicates of live memories dropped, supersedes
    checked against the bot's live memories."""
    by_seq = {m.seq: m for m in messages}
    user_messages = [m for m in messages if m.role is MessageRole.USER]
    fallback = user_messages[-1] if user_messages else (messages[-1] if messages else None)
    seen = {normalise(m.fact) for m in known.values()}
    replaced: set[uuid.UUID] = set()
    memories: list[MemoryEntry] = []
    supersedes: dict[uuid.UUID, uuid.UUID] = {}
    duplicates = 0
    for f in facts:
        key = normalise(f.fact)
        if not key or key in seen:
            duplicates += 1
            continue
        seen.add(key)
        source = by_seq.get(f.source_seq) if f.source_seq is not None else None
        source = source or fallback
        entry = MemoryEntry(
            bot_id=job.bot_id,
            fact=f.fact,
            category=f.category,
            importance=f.importance,
            session_id=job.session_id,
            source_message_id=None if source is None else source.id,
        )
        old = known.get(f.supersedes) if f.supersedes else None
        if f.supersedes and old is None:
            log.warning(
                "extracted fact names unknown memory %r to supersede; saved as new", f.supersedes
            )
        if old is not None and old.id not in replaced:
            replaced.add(old.id)
            supersedes[entry.id] = old.id
        memories.append(entry)
    return Plan(memories=memories, supersedes=supersedes, skipped_duplicates=duplicates)
