"""Turning a range of messages into memories: the request, the reply parser, the plan.

The model sees the messages of the job's range with their seq numbers, and the live memories
the session's user may see (theirs and the bot's own, docs/users.md) with short ids (m1, m2,
…), and answers with a JSON array of
``{fact, category, importance, source_seq, supersedes}``. Replies are parsed leniently
(code fences, prose around the array); invalid entries are skipped and logged; a reply with
no parseable array is an error, so the job is retried rather than silently "empty".
"""

from __future__ import annotations

import json
import logging
import math
import re
import unicodedata
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from boternity.errors import BoternityError, ValidationError
from boternity.llm.base import ChatTurn, CompletionRequest
from boternity.models import (
    ChatMessage,
    MemoryCategory,
    MemoryEntry,
    MessageRole,
    PendingExtraction,
    check_text,
)
from boternity.repositories import fact_key, may_supersede

if TYPE_CHECKING:
    from boternity.embeddings.base import Vector
    from boternity.memory.similar import FactMeaning

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
#: What one job may save: a reply with more new facts keeps the first ones, and the job's
#: report and log say how many were dropped.
MAX_FACTS_PER_JOB = 50
#: A reply is a short JSON array (the request asks for at most 2048 tokens): one far longer is
#: refused unread rather than parsed.
MAX_REPLY_CHARS = 1_000_000
#: How many "[" are tried as the start of the array: prose rarely has more, and each failed
#: try may scan far, so a reply made of brackets costs little.
MAX_ARRAY_STARTS = 100
#: A short id is "m" and a number; anything longer cannot name a known memory.
MAX_SHORT_ID_CHARS = 16
#: Skipped entries logged one by one; the rest are counted in one line.
LOGGED_SKIPS = 20


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
        purpose="extraction",
    )


_FENCE = re.compile(r"```[a-zA-Z0-9_-]*\s*\n?(.*?)```", re.DOTALL)


def _find_array(text: str) -> list[object] | None:
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    decoder = json.JSONDecoder()
    tries = 0
    for candidate in candidates:
        stripped = candidate.strip()
        start = stripped.find("[")
        while start != -1 and tries < MAX_ARRAY_STARTS:
            tries += 1
            try:
                value, _ = decoder.raw_decode(stripped, start)
            except (ValueError, RecursionError):
                # Not JSON here (JSONDecodeError), an integer over Python's 4300-digit limit
                # (ValueError), or nesting too deep to decode (RecursionError).
                value = None
            if isinstance(value, list):
                return value
            start = stripped.find("[", start + 1)
    return None


def parse_reply(text: str) -> list[ExtractedFact]:
    """The facts in a model reply. Raises ExtractionError when there is no JSON array (or the
    reply is too long to read); an invalid entry is skipped with its reason logged."""
    if len(text) > MAX_REPLY_CHARS:
        raise ExtractionError(
            f"the reply is too long ({len(text)} characters; at most {MAX_REPLY_CHARS} are read)"
        )
    items = _find_array(text)
    if items is None:
        preview = text.strip()[:120]
        raise ExtractionError(f"the reply contained no JSON array: {preview!r}")
    facts: list[ExtractedFact] = []
    skipped = 0
    for index, item in enumerate(items):
        try:
            facts.append(_entry(item))
        except (ValueError, TypeError, OverflowError, BoternityError) as exc:
            skipped += 1
            if skipped <= LOGGED_SKIPS:
                log.warning("skipping extracted entry %d: %s", index, exc)
    if skipped > LOGGED_SKIPS:
        log.warning("skipped %d more invalid extracted entries", skipped - LOGGED_SKIPS)
    return facts


def _brief(value: object) -> str:
    """A value for a log line: short, whatever the model sent."""
    if isinstance(value, str):
        return repr(value[:40]) + ("..." if len(value) > 40 else "")
    if value is None or isinstance(value, bool | int | float):
        text = repr(value)
        return text if len(text) <= 40 else f"{text[:40]}..."
    return "an array" if isinstance(value, list) else f"a {type(value).__name__}"


def _entry(item: object) -> ExtractedFact:
    """One reply item, checked field by field (ValueError names the first bad field)."""
    if not isinstance(item, dict):
        raise ValueError(f"expected an object, got {_brief(item)}")
    return ExtractedFact(
        fact=_fact(item.get("fact")),
        category=_category(item.get("category")),
        importance=_importance(item.get("importance")),
        source_seq=_source_seq(item.get("source_seq")),
        supersedes=_short_id(item.get("supersedes")),
    )


def _fact(value: object) -> str:
    if value is None:
        raise ValueError("no fact")
    if not isinstance(value, str):
        raise ValueError(f"fact must be text, got {_brief(value)}")
    check_text(value, "fact")  # NUL, lone surrogates: no backend can store them
    fact = " ".join(value.split())
    if not fact:
        raise ValueError("empty fact")
    if len(fact) > MAX_FACT_CHARS:
        raise ValueError(f"fact is longer than {MAX_FACT_CHARS} characters ({len(fact)})")
    if any(unicodedata.category(ch) == "Cc" for ch in fact):
        raise ValueError(f"fact contains control characters: {_brief(fact)}")
    return fact


def _category(value: object) -> MemoryCategory:
    if value is None:
        return MemoryCategory.FACT
    if not isinstance(value, str):
        raise ValueError(f"category must be text, got {_brief(value)}")
    try:
        return MemoryCategory(value.strip().lower())
    except ValueError:
        raise ValueError(f"unknown category {_brief(value)}") from None


def _importance(value: object) -> int:
    """1..5; numbers outside are clamped, anything not a finite number is refused."""
    if value is None:
        return 3
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"importance {_brief(value)} is not a number")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"importance {_brief(value)} is not a finite number")
        value = round(value)
    return min(5, max(1, value))


def _source_seq(value: object) -> int | None:
    """An integer, or None (the planner falls back to the last user message)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _short_id(value: object) -> str | None:
    """A known memory's short id, or None: anything else cannot name one."""
    if not isinstance(value, str):
        return None
    stripped = value.strip()
    return stripped if 0 < len(stripped) <= MAX_SHORT_ID_CHARS else None


#: The form two facts are compared in (one rule for the planner and the stores).
normalise = fact_key


@dataclass(frozen=True, slots=True)
class Plan:
    memories: list[MemoryEntry]
    supersedes: dict[uuid.UUID, uuid.UUID]  # new memory id -> live memory it replaces
    skipped_duplicates: int
    dropped: int = 0  # new facts beyond MAX_FACTS_PER_JOB, not saved
    #: New facts that repeat a known memory (the same fact, or the same by meaning): the fact,
    #: not saved, and the memory it repeats.
    repeated: list[tuple[MemoryEntry, MemoryEntry]] = field(default_factory=list)
    #: The vectors of the new memories and repeats, when the embedder made them (saved with
    #: those the store saves).
    vectors: dict[uuid.UUID, Vector] = field(default_factory=dict)


def plan_memories(
    job: PendingExtraction,
    messages: Sequence[ChatMessage],
    known: dict[str, MemoryEntry],
    facts: Sequence[ExtractedFact],
    *,
    user_id: str | None = None,
    meaning: FactMeaning | None = None,
) -> Plan:
    """What to save, owned by ``user_id`` (the session's user): provenance resolved,
    duplicates of known memories dropped, supersedes checked against the known memories (only
    ones of the same user may be replaced), at most MAX_FACTS_PER_JOB new memories.

    With ``meaning`` (the embedder's view of the first facts), a fact that does not name a
    memory to supersede and repeats a live memory by meaning (cosine similarity at or above
    its threshold) is a duplicate too. ``repeated`` names the memory each duplicate repeats,
    so its words are kept in that memory's history."""
    by_seq = {m.seq: m for m in messages}
    user_messages = [m for m in messages if m.role is MessageRole.USER]
    fallback = user_messages[-1] if user_messages else (messages[-1] if messages else None)
    # fact key -> the known memory with that fact (None: a new fact of this reply)
    seen: dict[str, MemoryEntry | None] = {fact_key(m.fact): m for m in known.values()}
    replaced: set[uuid.UUID] = set()
    memories: list[MemoryEntry] = []
    supersedes: dict[uuid.UUID, uuid.UUID] = {}
    repeated: list[tuple[MemoryEntry, MemoryEntry]] = []
    vectors: dict[uuid.UUID, Vector] = {}
    duplicates = dropped = 0
    for index, f in enumerate(facts):
        key = fact_key(f.fact)
        if not key:
            duplicates += 1
            continue
        source = by_seq.get(f.source_seq) if f.source_seq is not None else None
        source = source or fallback
        try:
            entry = MemoryEntry(
                bot_id=job.bot_id,
                fact=f.fact,
                category=f.category,
                importance=f.importance,
                session_id=job.session_id,
                source_message_id=None if source is None else source.id,
                user_id=user_id,
            )
        except ValidationError as exc:  # a rule of the model the parser does not know
            log.warning("skipping extracted fact %s: %s", _brief(f.fact), exc)
            continue
        old = known.get(f.supersedes) if f.supersedes else None
        duplicate, twin = key in seen, seen.get(key)
        if not duplicate and old is None and meaning is not None:  # an update never repeats
            twin = meaning.repeats(index)
            duplicate = twin is not None
        if duplicate:
            duplicates += 1
            if twin is not None:  # a known memory: its history records the repeat
                repeated.append((entry, twin))
                if meaning is not None and index < len(meaning.vectors):  # saved after all
                    vectors[entry.id] = meaning.vectors[index]  # if the memory is gone
            continue
        if len(memories) >= MAX_FACTS_PER_JOB:
            dropped += 1
            continue
        seen[key] = None
        if meaning is not None and index < len(meaning.vectors):
            vectors[entry.id] = meaning.vectors[index]
        if f.supersedes and old is None:
            log.warning(
                "extracted fact names unknown memory %s to supersede; saved as new",
                _brief(f.supersedes),
            )
        elif old is not None and not may_supersede(user_id, old.user_id):
            log.info(
                "extracted fact would supersede memory %s of the bot (no user); saved as new",
                old.id,
            )
            old = None
        if old is not None and old.id not in replaced:
            replaced.add(old.id)
            supersedes[entry.id] = old.id
        memories.append(entry)
    return Plan(
        memories=memories,
        supersedes=supersedes,
        skipped_duplicates=duplicates,
        dropped=dropped,
        repeated=repeated,
        vectors=vectors,
    )
