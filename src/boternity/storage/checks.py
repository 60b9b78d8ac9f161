"""Argument checks every backend applies the same way, before touching the database."""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from boternity.errors import ConflictError, ValidationError
from boternity.models import MAX_BIGINT, MAX_USER_ID_LENGTH, MemoryEntry, check_text, to_utc
from boternity.repositories import ANY_USER, UserScope, fact_key

M = TypeVar("M")


def check_model(value: object, kind: type[M], where: str) -> M:
    """A repository method was handed the wrong kind of object: refuse it by name."""
    if not isinstance(value, kind):
        raise ValidationError(f"{where} expects a {kind.__name__}, got {type(value).__name__}")
    return value


def check_slug(slug: object) -> str:
    if not isinstance(slug, str):
        raise ValidationError(f"slug must be str, got {type(slug).__name__}")
    check_text(slug, "slug")
    return slug


def check_limit(limit: int, name: str = "limit") -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= MAX_BIGINT:
        raise ValidationError(f"{name} must be an int in 0..{MAX_BIGINT}, got {limit!r}")
    return limit


def check_page(limit: int | None, offset: int | None) -> tuple[int | None, int]:
    """Validate paging (each may be None); returns (limit or None for all, offset >= 0)."""
    lim = None if limit is None else check_limit(limit)
    return lim, 0 if offset is None else check_limit(offset, "offset")


#: An integration's session key (e.g. an Agents SDK session id) is at most this long, so it
#: always fits in a B-tree index entry on every backend.
MAX_SESSION_KEY = 500


def check_session_key(key: object) -> str:
    if not isinstance(key, str):
        raise ValidationError(f"session key must be str, got {type(key).__name__}")
    check_text(key, "session key")
    if not key or len(key) > MAX_SESSION_KEY:
        raise ValidationError(
            f"session key must be 1..{MAX_SESSION_KEY} characters, got {len(key)}"
        )
    return key


def check_user(user_id: object, name: str = "user_id") -> str:
    """A user's id argument: text a ChatSession.user_id could hold (never None here)."""
    if not isinstance(user_id, str):
        raise ValidationError(f"{name} must be a user's id (str), got {type(user_id).__name__}")
    check_text(user_id, name)
    if not user_id.strip() or len(user_id) > MAX_USER_ID_LENGTH:
        raise ValidationError(
            f"{name} must be 1..{MAX_USER_ID_LENGTH} characters, not blank, got {len(user_id)}"
        )
    return user_id


def check_scope(user_id: object) -> UserScope:
    """A ``user_id=`` argument of a read: a user's id, None (no user) or ANY_USER."""
    if user_id is None or user_id is ANY_USER:
        return user_id
    return check_user(user_id)


def check_version(version: int) -> int:
    """A soul version to look up: any 64-bit int (versions that don't exist just aren't found)."""
    if isinstance(version, bool) or not isinstance(version, int):
        raise ValidationError(f"version must be an int, got {type(version).__name__}")
    if not -MAX_BIGINT <= version <= MAX_BIGINT:
        raise ValidationError(f"version must fit in 64 bits, got {version}")
    return version


def check_id(value: uuid.UUID | str, name: str) -> uuid.UUID:
    """Ids may be given as UUID or UUID text; anything else is a ValidationError."""
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError as exc:
            raise ValidationError(f"{name}: not a UUID: {value!r}") from exc
    raise ValidationError(f"{name}: expected a UUID, got {type(value).__name__}")


def check_lease(lease: timedelta) -> timedelta:
    if not isinstance(lease, timedelta) or lease <= timedelta(0):
        raise ValidationError(f"lease must be a positive timedelta, got {lease!r}")
    return lease


def claim_window(now: datetime | None, lease: timedelta) -> tuple[datetime, datetime]:
    """(claim time in UTC, end of the lease) for claim_pending_extractions."""
    check_lease(lease)
    at = datetime.now(UTC) if now is None else now
    if not isinstance(at, datetime) or at.utcoffset() is None:
        raise ValidationError("now must be a timezone-aware datetime")
    at = to_utc(at, "now")
    try:
        return at, to_utc(at + lease, "now + lease")
    except OverflowError as exc:
        raise ValidationError(f"lease {lease} from {at} ends after year 9999") from exc


def drop_remembered(
    batch: Sequence[MemoryEntry],
    supersedes: Mapping[uuid.UUID, uuid.UUID],
    live: Iterable[tuple[object, str | None, Any, str]],
) -> tuple[list[MemoryEntry], dict[uuid.UUID, uuid.UUID], dict[uuid.UUID, Any]]:
    """The memories of ``batch`` whose fact a conversation with their user does not see yet
    (``live``: (bot id, user id, memory id, fact) of the live memories each bot and user of
    the batch sees), the supersessions left (one of a skipped memory goes with it), and, for
    each memory skipped because a live memory holds its fact, that memory's id (as read).
    Called in the saving transaction, with the bots locked."""
    holders: dict[tuple[str, str | None, str], Any] = {}
    for bot, user, memory_id, fact in live:
        holders.setdefault((str(bot), user, fact_key(fact)), memory_id)
    seen = set(holders)
    kept: list[MemoryEntry] = []
    repeats: dict[uuid.UUID, Any] = {}
    for m in batch:
        key = (str(m.bot_id), m.user_id, fact_key(m.fact))
        if key not in seen:
            seen.add(key)
            kept.append(m)
        elif key in holders:
            repeats[m.id] = holders[key]
    ids = {m.id for m in kept}
    skipped = {m.id for m in batch} - ids
    left = {new: old for new, old in supersedes.items() if new in ids and old not in skipped}
    return kept, left, repeats


def check_not_remembered(entry: MemoryEntry, live: Iterable[tuple[object, str]]) -> None:
    """ConflictError when ``live`` (the (id, fact) of the live memories a conversation with
    the entry's user sees) already holds the entry's fact. Called in the saving transaction,
    with the bot locked."""
    key = fact_key(entry.fact)
    for memory_id, fact in live:
        if fact_key(fact) == key:
            raise ConflictError(f"already remembered: {fact!r} (memory {memory_id})")


# Words too common to say anything about relevance (PostgreSQL's english config drops these
# too), so "where do I live" searches for "live".
_STOP_WORDS = frozenset([
    "a", "about", "after", "all", "also", "am", "an", "and", "any", "are", "as", "at", "be",
    "been", "but", "by", "can", "could", "did", "do", "does", "for", "from", "had", "has",
    "have", "he", "her", "him", "his", "how", "i", "if", "in", "into", "is", "it", "its",
    "just", "me", "my", "no", "not", "of", "on", "or", "our", "she", "so", "than", "that",
    "the", "their", "them", "then", "there", "these", "they", "this", "those", "to", "too",
    "up", "us", "was", "we", "were", "what", "when", "where", "which", "who", "why", "will",
    "with", "would", "you", "your",
    # What an apostrophe leaves of a word ("Ana's", "don't", "I'm", "I'd", "I'll", "you're",
    # "I've"): as words of their own they match every possessive or contraction (PostgreSQL's
    # English configuration drops some of them; SQLite's tokenizer keeps them all).
    "s", "t", "m", "d", "ll", "re", "ve",
])  # fmt: skip
_WORD = re.compile(r"\w+")
MAX_SEARCH_TERMS = 32


def search_terms(query: str) -> list[str]:
    """The words of a free-text query, lowercased, without stop words or duplicates.

    Only runs of letters and digits survive, so quotes, operators and punctuation in the query
    can never reach a search engine's syntax.
    """
    if not isinstance(query, str):
        raise ValidationError(f"query must be str, got {type(query).__name__}")
    words = _WORD.findall(unicodedata.normalize("NFKC", query).lower())
    terms = [w for w in dict.fromkeys(words) if w not in _STOP_WORDS and w.strip("_")]
    return terms[:MAX_SEARCH_TERMS]
