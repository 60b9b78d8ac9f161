"""Turning what the user typed (a slug, a full id, or a unique id prefix) into an object.

Like git, any unambiguous prefix of an id works (hyphens optional, case-insensitive); an
ambiguous prefix is an error that lists the candidates.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Literal, TypeVar

from boternity.cli.output import short_ids
from boternity.cli.runtime import EXIT_USAGE, AmbiguousError, CliError
from boternity.errors import NotFoundError
from boternity.models import Bot, ChatSession, MemoryEntry, PendingExtraction
from boternity.store import Store
from boternity.text import ellipsis

T = TypeVar("T")

Kind = Literal["bot", "session", "memory", "job"]

MIN_PREFIX = 4
MAX_CANDIDATES = 8
_HEX = re.compile(r"[0-9a-f]+")


def parse_prefix(ref: str, kind: str) -> str:
    """The hex digits of an id prefix; CliError when ``ref`` cannot be one."""
    digits = ref.strip().lower().replace("-", "")
    if not _HEX.fullmatch(digits) or len(digits) > 32:
        raise NotFoundError(f"no {kind} with id {ref!r}")
    if len(digits) < MIN_PREFIX:
        raise CliError(
            f"id prefix {ref!r} is too short: give at least {MIN_PREFIX} characters",
            exit_code=EXIT_USAGE,
        )
    return digits


def full_uuid(ref: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(ref.strip())
    except ValueError:
        return None


def pick(
    ref: str,
    candidates: Sequence[T],
    *,
    kind: str,
    key: Callable[[T], uuid.UUID],
    describe: Callable[[T], str],
) -> T:
    """The one candidate whose id starts with the prefix ``ref``."""
    digits = parse_prefix(ref, kind)
    found = [c for c in candidates if key(c).hex.startswith(digits)]
    if not found:
        raise NotFoundError(f"no {kind} with id {ref!r}")
    if len(found) > 1:
        shown = "; ".join(f"{key(c)} {describe(c)}".strip() for c in found[:MAX_CANDIDATES])
        more = f"; and {len(found) - MAX_CANDIDATES} more" if len(found) > MAX_CANDIDATES else ""
        raise AmbiguousError(
            f"{kind} id prefix {ref!r} is ambiguous: {len(found)} matches: {shown}{more}"
        )
    return found[0]


async def resolve_bot(store: Store, ref: str) -> Bot:
    """A bot by slug, id, or unique id prefix."""
    bot = await store.bots.get_bot_by_slug(ref.strip())
    if bot is not None:
        return bot
    exact = full_uuid(ref)
    if exact is not None:
        bot = await store.bots.get_bot(exact)
        if bot is None:
            raise NotFoundError(f"no bot with id {ref!r}")
        return bot
    missing = NotFoundError(f"no bot with slug or id {ref!r} (see 'bnity bot list')")
    digits = ref.strip().lower().replace("-", "")
    if len(digits) < MIN_PREFIX or not _HEX.fullmatch(digits):
        raise missing  # a mistyped slug, not a short id prefix
    try:
        return pick(
            ref,
            await store.bots.list_bots(),
            kind="bot",
            key=lambda b: b.id,
            describe=lambda b: f"({b.slug})",
        )
    except NotFoundError:
        raise missing from None


async def all_sessions(store: Store) -> list[ChatSession]:
    sessions: list[ChatSession] = []
    for bot in await store.bots.list_bots():
        sessions.extend(await store.chat.list_sessions(bot.id))
    return sessions


async def resolve_session(
    store: Store, ref: str, *, bot_id: uuid.UUID | None = None
) -> ChatSession:
    """A session by id or unique id prefix (among ``bot_id``'s sessions when given)."""
    exact = full_uuid(ref)
    if exact is not None:
        session = await store.chat.get_session(exact)
        if session is None:
            raise NotFoundError(f"no session with id {ref!r}")
        return session
    candidates = (
        await store.chat.list_sessions(bot_id) if bot_id is not None else await all_sessions(store)
    )
    return pick(
        ref,
        candidates,
        kind="session",
        key=lambda s: s.id,
        describe=lambda s: f"({ellipsis(s.title or 'untitled', 30)})",
    )


async def all_memories(store: Store) -> list[MemoryEntry]:
    memories: list[MemoryEntry] = []
    for bot in await store.bots.list_bots():
        memories.extend(await store.memory.get_memories(bot.id, include_superseded=True))
    return memories


async def resolve_memory(store: Store, ref: str) -> MemoryEntry:
    exact = full_uuid(ref)
    if exact is not None:
        memory = await store.memory.get_memory(exact)
        if memory is None:
            raise NotFoundError(f"no memory with id {ref!r}")
        return memory
    return pick(
        ref,
        await all_memories(store),
        kind="memory",
        key=lambda m: m.id,
        describe=lambda m: f"({ellipsis(m.fact, 30)})",
    )


async def all_ids(store: Store, kind: Kind) -> list[uuid.UUID]:
    """Every id of one kind in the database (superseded memories and exhausted jobs too)."""
    if kind == "bot":
        return [b.id for b in await store.bots.list_bots()]
    if kind == "session":
        return [s.id for s in await all_sessions(store)]
    if kind == "memory":
        return [m.id for m in await all_memories(store)]
    return [j.id for j in await store.memory.list_pending_extractions()]


async def unique_prefixes(
    store: Store, kind: Kind, ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, str]:
    """The one rule for every id bnity prints: for each id, its shortest prefix (at least 8
    characters) that no other id of that kind in the database shares now, so whatever is
    printed works when typed back. Reads every id of the kind (a prefix query in the store
    can replace that later without changing callers)."""
    wanted = list(ids)
    if not wanted:
        return {}
    return short_ids(wanted, await all_ids(store, kind))


async def unique_prefix(store: Store, kind: Kind, id_: uuid.UUID) -> str:
    """:func:`unique_prefixes` of one id."""
    return (await unique_prefixes(store, kind, [id_]))[id_]


async def resolve_job(store: Store, ref: str) -> PendingExtraction:
    exact = full_uuid(ref)
    if exact is not None:
        job = await store.memory.get_pending_extraction(exact)
        if job is None:
            raise NotFoundError(f"no queued job with id {ref!r}")
        return job
    return pick(
        ref,
        await store.memory.list_pending_extractions(),
        kind="queued job",
        key=lambda j: j.id,
        describe=lambda j: f"(session {str(j.session_id)[:8]})",
    )
