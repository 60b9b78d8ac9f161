"""Turning what the user typed (a slug, a full id, or a unique id prefix) into an object.

Like git, any unambiguous prefix of an id works (hyphens optional, case-insensitive); an
ambiguous prefix is an error that lists the candidates.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, Iterable
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


#: An ambiguous prefix names at most this many matches (and says how many more it found).
MAX_COUNTED = 1000


async def pick(
    store: Store,
    ref: str,
    *,
    kind: Kind,
    label: str,
    load: Callable[[uuid.UUID], Awaitable[T | None]],
    describe: Callable[[T], str],
    bot_id: uuid.UUID | None = None,
) -> T:
    """The object of ``kind`` with the full id ``ref``, or the one whose id starts with the
    prefix ``ref``: a range query on the store's id index, then one load (never a listing of
    every row)."""
    exact = full_uuid(ref)
    if exact is not None:
        item = await load(exact)
        if item is None:
            raise NotFoundError(f"no {label} with id {ref!r}")
        return item
    digits = parse_prefix(ref, label)
    found = await store.ids.with_prefix(kind, digits, bot_id=bot_id, limit=MAX_COUNTED + 1)
    if not found:
        raise NotFoundError(f"no {label} with id {ref!r}")
    if len(found) > 1:
        shown = []
        for id_ in found[:MAX_CANDIDATES]:
            item = await load(id_)
            shown.append(f"{id_} {describe(item) if item is not None else ''}".strip())
        count = f"{len(found)}" if len(found) <= MAX_COUNTED else f"over {MAX_COUNTED}"
        more = (
            f"; and {len(found) - MAX_CANDIDATES} more"
            if MAX_CANDIDATES < len(found) <= MAX_COUNTED
            else "; and more"
            if len(found) > MAX_COUNTED
            else ""
        )
        raise AmbiguousError(
            f"{label} id prefix {ref!r} is ambiguous: {count} matches: {'; '.join(shown)}{more}"
        )
    item = await load(found[0])
    if item is None:  # deleted since the look-up
        raise NotFoundError(f"no {label} with id {ref!r}")
    return item


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
        return await pick(
            store,
            ref,
            kind="bot",
            label="bot",
            load=store.bots.get_bot,
            describe=lambda b: f"({b.slug})",
        )
    except NotFoundError:
        raise missing from None


async def resolve_session(
    store: Store, ref: str, *, bot_id: uuid.UUID | None = None
) -> ChatSession:
    """A session by id or unique id prefix (among ``bot_id``'s sessions when given)."""
    return await pick(
        store,
        ref,
        kind="session",
        label="session",
        load=store.chat.get_session,
        describe=lambda s: f"({ellipsis(s.title or 'untitled', 30)})",
        bot_id=bot_id,
    )


async def resolve_memory(store: Store, ref: str) -> MemoryEntry:
    return await pick(
        store,
        ref,
        kind="memory",
        label="memory",
        load=store.memory.get_memory,
        describe=lambda m: f"({ellipsis(m.fact, 30)})",
    )


async def unique_prefixes(
    store: Store, kind: Kind, ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, str]:
    """The one rule for every id bnity prints: for each id, its shortest prefix (at least 8
    characters) that no other id of that kind in the database shares now, so whatever is
    printed works when typed back. Only an id's neighbours in id order can share more of it,
    so one query (two index look-ups per id) answers it, whatever the size of the database."""
    wanted = list(dict.fromkeys(ids))
    near = await store.ids.neighbours(kind, wanted)
    return {id_: short_ids([id_], [n for n in near[id_] if n is not None])[id_] for id_ in wanted}


async def unique_prefix(store: Store, kind: Kind, id_: uuid.UUID) -> str:
    """:func:`unique_prefixes` of one id."""
    return (await unique_prefixes(store, kind, [id_]))[id_]


async def resolve_job(store: Store, ref: str) -> PendingExtraction:
    return await pick(
        store,
        ref,
        kind="job",
        label="queued job",
        load=store.memory.get_pending_extraction,
        describe=lambda j: f"(session {str(j.session_id)[:8]})",
    )
