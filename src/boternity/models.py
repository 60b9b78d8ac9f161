"""Plain domain objects, validated on construction.

Every model is a frozen, slotted dataclass built with keywords. Derive changed copies with
``dataclasses.replace`` (validation runs again). Invalid values raise
:class:`boternity.errors.ValidationError` before anything can reach a database.

Text fields have length limits (the ``MAX_*`` constants below, listed in docs/limits.md), so
every backend accepts and refuses the same values: PostgreSQL cannot index a btree key over
about 2700 bytes nor build a tsvector over 1 MB, where SQLite would store anything.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import unicodedata
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar

from boternity.errors import ValidationError
from boternity.ids import new_id, utc_now

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = [
    "LIMITS",
    "MAX_BIGINT",
    "MAX_DESCRIPTION_LENGTH",
    "MAX_EXTRACTION_ATTEMPTS",
    "MAX_FACT_LENGTH",
    "MAX_MESSAGE_LENGTH",
    "MAX_METADATA_BYTES",
    "MAX_MODEL_LENGTH",
    "MAX_NAME_LENGTH",
    "MAX_NOTE_LENGTH",
    "MAX_SLUG_LENGTH",
    "MAX_SOUL_LENGTH",
    "MAX_SUMMARY_LENGTH",
    "MAX_TAG_LENGTH",
    "MAX_TAGS",
    "MAX_TITLE_LENGTH",
    "MAX_USER_ID_LENGTH",
    "Bot",
    "BotCategory",
    "BotStatus",
    "ChatMessage",
    "ChatSession",
    "ContextSummary",
    "MemoryCategory",
    "MemoryActor",
    "MemoryEntry",
    "MemoryEvent",
    "MemoryEventKind",
    "MessageHit",
    "MessageRole",
    "PendingExtraction",
    "SessionStatus",
    "SoulVersion",
    "check_enum",
    "slugify",
    "soul_hash",
]

#: After this many failed attempts a queued extraction is "exhausted": kept, but not claimed.
MAX_EXTRACTION_ATTEMPTS = 3

#: PostgreSQL's largest bigint (and SQLite's largest INTEGER): every counter, token total,
#: paging number and sequence number must fit on every backend.
MAX_BIGINT = 2**63 - 1

# --- length limits ---------------------------------------------------------------------------
# In characters (code points, Python's len) unless the name says bytes. One place, shown to
# users in docs/limits.md (a test keeps that table in step with LIMITS). A character is at most
# 4 bytes of UTF-8, so an indexed field of n characters is at most 4n bytes.

#: Bot.slug: the unique index key; 4 * 200 = 800 bytes, far under PostgreSQL's ~2700-byte
#: btree row limit.
MAX_SLUG_LENGTH = 200
#: Bot.name: shown in lists and the chat prompt; the slug is made from it.
MAX_NAME_LENGTH = 200
#: Bot.description.
MAX_DESCRIPTION_LENGTH = 2_000
#: Bot.tags: how many, and each tag's length.
MAX_TAGS = 50
MAX_TAG_LENGTH = 100
#: Bot.user_id (the caller's own id for the bot's owner), and ChatSession.user_id and
#: MemoryEntry.user_id (the application's key for the person a conversation or memory belongs
#: to, such as "discord:81234"): an index key, 4 * 200 = 800 bytes at most.
MAX_USER_ID_LENGTH = 200
#: SoulVersion.content: the system prompt sent with every request.
MAX_SOUL_LENGTH = 100_000
#: SoulVersion.message (a note on the change), ChatMessage.stop_reason.
MAX_NOTE_LENGTH = 2_000
#: ChatSession.model, ChatMessage.model: a model name such as "gpt-4o-mini".
MAX_MODEL_LENGTH = 200
#: ChatSession.title.
MAX_TITLE_LENGTH = 500
#: ChatMessage.content: one message, in or out (about 250k tokens).
MAX_MESSAGE_LENGTH = 1_000_000
#: ChatMessage.metadata: the size of its compact JSON text, in UTF-8 bytes.
MAX_METADATA_BYTES = 1_000_000
#: MemoryEntry.fact: a memory is a sentence or two; this bound keeps its full-text vector far
#: under PostgreSQL's 1 MB tsvector limit whatever the words.
MAX_FACT_LENGTH = 10_000
#: ContextSummary.summary.
MAX_SUMMARY_LENGTH = 100_000
#: The longest embedding stored (the schema's CHECK says the same; OpenAI's largest is 3072):
#: an embedder replying with longer vectors is refused before anything is stored.
MAX_EMBEDDING_DIMENSION = 16_384

#: Every limit by the fields it applies to (for docs and tests).
LIMITS: dict[str, int] = {
    "Bot.slug": MAX_SLUG_LENGTH,
    "Bot.name": MAX_NAME_LENGTH,
    "Bot.description": MAX_DESCRIPTION_LENGTH,
    "Bot.tags (count)": MAX_TAGS,
    "Bot.tags (each)": MAX_TAG_LENGTH,
    "Bot.user_id": MAX_USER_ID_LENGTH,
    "SoulVersion.content": MAX_SOUL_LENGTH,
    "SoulVersion.message": MAX_NOTE_LENGTH,
    "ChatSession.model": MAX_MODEL_LENGTH,
    "ChatSession.title": MAX_TITLE_LENGTH,
    "ChatSession.user_id": MAX_USER_ID_LENGTH,
    "ChatMessage.content": MAX_MESSAGE_LENGTH,
    "ChatMessage.model": MAX_MODEL_LENGTH,
    "ChatMessage.stop_reason": MAX_NOTE_LENGTH,
    "ChatMessage.metadata (bytes)": MAX_METADATA_BYTES,
    "MemoryEntry.fact": MAX_FACT_LENGTH,
    "MemoryEntry.user_id": MAX_USER_ID_LENGTH,
    "ContextSummary.summary": MAX_SUMMARY_LENGTH,
}


class BotStatus(StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"
    ARCHIVED = "archived"


class BotCategory(StrEnum):
    ASSISTANT = "assistant"
    CREATIVE = "creative"
    RESEARCH = "research"
    UTILITY = "utility"


class SessionStatus(StrEnum):
    ACTIVE = "active"
    COMPLETED = "completed"
    CRASHED = "crashed"


class MessageRole(StrEnum):
    USER = "user"
    ASSISTANT = "assistant"
    SYSTEM = "system"


class MemoryEventKind(StrEnum):
    ADDED = "added"
    SUPERSEDED = "superseded"
    DELETED = "deleted"
    RESTORED = "restored"  # the memory that superseded it was deleted: it is live again
    REPEATED = "repeated"  # an extracted fact said it again (maybe in other words): not saved


class MemoryActor(StrEnum):
    USER = "user"  # remember / forget / delete by hand
    EXTRACTION = "extraction"  # an extraction job
    SYSTEM = "system"  # anything else the library did


class MemoryCategory(StrEnum):
    PREFERENCE = "preference"
    FACT = "fact"
    DECISION = "decision"
    CONTEXT = "context"
    CORRECTION = "correction"


# --- field checks -------------------------------------------------------------------------

E = TypeVar("E", bound=StrEnum)


def _invalid(obj: object, name: str, problem: str) -> ValidationError:
    """The error for a bad field (raised by the caller)."""
    return ValidationError(f"{type(obj).__name__}.{name}: {problem}")


#: Compact JSON text, as every backend stores metadata: one encoder made once (json.dumps
#: with these options builds a new one per call, more than half its cost for a small dict).
json_text = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _set(obj: object, name: str, value: object) -> None:
    object.__setattr__(obj, name, value)


def check_text(value: str, what: str) -> None:
    """Refuse text that some backend cannot store: NUL, and lone surrogates (not UTF-8)."""
    if "\x00" in value:
        raise ValidationError(
            f"{what}: text contains a NUL character (\\x00), which cannot be stored"
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValidationError(
            f"{what}: text contains a lone surrogate at position {exc.start},"
            " which is not valid UTF-8"
        ) from exc


def _text(obj: object, name: str, *, empty: bool = True, limit: int | None = None) -> None:
    value = getattr(obj, name)
    if not isinstance(value, str):
        raise _invalid(obj, name, f"expected str, got {type(value).__name__}")
    if limit is not None:
        check_length(value, limit, f"{type(obj).__name__}.{name}")
    check_text(value, f"{type(obj).__name__}.{name}")
    if not empty and not value.strip():
        raise _invalid(obj, name, "must not be empty")


def _opt_text(obj: object, name: str, *, empty: bool = True, limit: int | None = None) -> None:
    if getattr(obj, name) is not None:
        _text(obj, name, empty=empty, limit=limit)


def _owner(obj: Any, *, new: bool = True) -> None:
    """``user_id`` of a session, memory or memory event: None (no user) or a non-empty key of
    at most MAX_USER_ID_LENGTH characters. Blank text is refused rather than taken for a
    person: an application that lost its user's id must not pool everyone's memories under
    "". A new session's or memory's user is also a key that reads as itself (check_user_id);
    a memory event copies its memory's."""
    _opt_text(obj, "user_id", empty=False, limit=MAX_USER_ID_LENGTH)
    if new and obj.user_id is not None:
        check_user_id(obj.user_id, f"{type(obj).__name__}.user_id")


#: Characters a user id may not hold: control and format characters (zero-width spaces and
#: joiners, bidirectional overrides), line and paragraph separators, unassigned code points
#: and noncharacters. They are invisible or reorder what is shown.
_HIDDEN = frozenset({"Cc", "Cf", "Cn", "Zl", "Zp"})
#: What listings show for "no user".
NO_USER_MARK = "-"


def check_user_id(user_id: str, what: str = "user_id") -> str:
    """Refuse (``ValidationError`` naming ``what``) a user id that would not read as itself
    wherever it is shown (docs/users.md): one with an invisible or control character, one
    that starts or ends with whitespace (" ana" shows as "ana"), and "-", the listings' mark
    for a session or memory without a user. Any other text is a plain key, compared exactly."""
    for at, c in enumerate(user_id):
        if unicodedata.category(c) in _HIDDEN:
            raise ValidationError(
                f"{what}: holds an invisible or control character (U+{ord(c):04X} at"
                f" position {at}); a user id must read as itself"
            )
    if user_id != user_id.strip():
        raise ValidationError(f"{what}: must not start or end with whitespace, got {user_id!r}")
    if user_id == NO_USER_MARK:
        raise ValidationError(f'{what}: "-" is how listings show "no user", not a user id')
    return user_id


def check_length(value: str, limit: int, what: str) -> None:
    """Refuse text over its documented limit (checked first: a 2 GB string fails fast)."""
    if len(value) > limit:
        raise ValidationError(f"{what}: {len(value)} characters, longer than the limit of {limit}")


#: The first and last datetimes are not storable: asyncpg writes them to PostgreSQL as
#: -infinity / infinity and reads them back naive, so a time must lie strictly between them.
FIRST_TIME = datetime.min.replace(tzinfo=UTC)
LAST_TIME = datetime.max.replace(tzinfo=UTC)


def to_utc(value: datetime, what: str) -> datetime:
    """An aware datetime in UTC, strictly between FIRST_TIME and LAST_TIME. Near year 1 or
    9999 the UTC time may not exist (0001-01-01 00:00+05:00 is in year 0): that is bad input,
    not an OverflowError."""
    try:
        utc = value.astimezone(UTC)
    except OverflowError as exc:
        raise ValidationError(
            f"{what}: {value.isoformat()} is outside the datetimes that exist in UTC"
            " (years 1..9999)"
        ) from exc
    if utc in (FIRST_TIME, LAST_TIME):
        raise ValidationError(
            f"{what}: {utc.isoformat()} is outside the storable datetimes (the first and last"
            " microsecond of years 1..9999 are reserved)"
        )
    return utc


def _uuid(obj: object, name: str) -> None:
    value = getattr(obj, name)
    if isinstance(value, uuid.UUID):
        return
    if isinstance(value, str):
        try:
            _set(obj, name, uuid.UUID(value))
        except ValueError as exc:
            raise _invalid(obj, name, f"not a UUID: {value!r}") from exc
        return
    raise _invalid(obj, name, f"expected UUID, got {type(value).__name__}")


def _opt_uuid(obj: object, name: str) -> None:
    if getattr(obj, name) is not None:
        _uuid(obj, name)


def _time(obj: object, name: str) -> None:
    value = getattr(obj, name)
    if not isinstance(value, datetime):
        raise _invalid(obj, name, f"expected datetime, got {type(value).__name__}")
    offset = value.utcoffset()
    if offset is None:
        raise _invalid(obj, name, "datetime must be timezone-aware")
    if offset != timedelta(0) or value.year in (1, 9999):
        _set(obj, name, to_utc(value, f"{type(obj).__name__}.{name}"))


def _opt_time(obj: object, name: str) -> None:
    if getattr(obj, name) is not None:
        _time(obj, name)


def _int(obj: object, name: str, *, low: int = 0, high: int = MAX_BIGINT) -> None:
    value = getattr(obj, name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(obj, name, f"expected int, got {type(value).__name__}")
    if not low <= value <= high:
        raise _invalid(obj, name, f"{value} is outside {low}..{high}")


def _opt_int(obj: object, name: str, *, low: int = 0, high: int = MAX_BIGINT) -> None:
    if getattr(obj, name) is not None:
        _int(obj, name, low=low, high=high)


def check_enum(kind: type[E], value: E | str, what: str) -> E:
    """``value`` as a member of ``kind`` (a member, or its value); anything else is a
    ValidationError naming ``what`` and the allowed values. The one enum check of every layer."""
    if isinstance(value, kind):
        return value
    try:
        return kind(value)
    except ValueError as exc:
        allowed = ", ".join(m.value for m in kind)
        raise ValidationError(
            f"{what}: unknown value {value!r} (expected one of: {allowed})"
        ) from exc


def _enum(obj: object, name: str, kind: type[E]) -> None:
    value = getattr(obj, name)
    if not isinstance(value, kind):
        _set(obj, name, check_enum(kind, value, f"{type(obj).__name__}.{name}"))


def _check_json(value: Any, where: str, depth: int = 0) -> None:
    """Metadata must be plain JSON that every backend round-trips exactly."""
    if depth > 64:
        raise ValidationError(f"{where}: nested deeper than 64 levels")
    if value is None or isinstance(value, bool | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError(f"{where}: {value!r} is not valid JSON")
        return
    if isinstance(value, str):
        check_text(value, where)
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check_json(item, f"{where}[{i}]", depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValidationError(f"{where}: object keys must be str, got {type(key).__name__}")
            check_text(key, where)
            _check_json(item, f"{where}.{key}", depth + 1)
        return
    raise ValidationError(f"{where}: {type(value).__name__} is not a JSON value")


_SLUG_JUNK = re.compile(r"[\W_]+")  # one class, so a mixed run like "_ " is one dash


def slugify(name: str) -> str:
    """Lowercase; every run of non-alphanumerics becomes one '-'; trimmed.

    ``'Bot v2.0'`` -> ``'bot-v2-0'``.
    """
    text = unicodedata.normalize("NFKC", name).lower()
    return _SLUG_JUNK.sub("-", text).strip("-")


def soul_hash(content: str) -> str:
    """sha256 hex of the UTF-8 soul text: the integrity check stored with every soul version."""
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


# --- models -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Bot:
    """A bot. Length limits: ``name`` MAX_NAME_LENGTH, ``slug`` MAX_SLUG_LENGTH,
    ``description`` MAX_DESCRIPTION_LENGTH, ``tags`` at most MAX_TAGS of MAX_TAG_LENGTH each,
    ``user_id`` MAX_USER_ID_LENGTH (docs/limits.md)."""

    name: str
    slug: str = ""  # "" (not given) -> slugify(name)
    description: str = ""
    status: BotStatus = BotStatus.ACTIVE
    category: BotCategory = BotCategory.ASSISTANT
    tags: list[str] = field(default_factory=list)
    user_id: str | None = None
    id: uuid.UUID = field(default_factory=new_id)
    conversation_count: int = 0
    total_tokens_used: int = 0
    version_count: int = 0
    created_at: datetime = field(default_factory=utc_now)
    updated_at: datetime = field(default_factory=utc_now)
    last_active_at: datetime | None = None

    def __post_init__(self) -> None:
        _text(self, "name", empty=False, limit=MAX_NAME_LENGTH)
        if not self.slug:
            _set(self, "slug", slugify(self.name))
            if not self.slug:
                raise _invalid(
                    self, "name", f"{self.name!r} gives an empty slug; pass slug= explicitly"
                )
        _text(self, "slug", empty=False, limit=MAX_SLUG_LENGTH)
        if slugify(self.slug) != self.slug:
            raise _invalid(
                self, "slug", f"{self.slug!r} is not a slug (lowercase letters, digits and '-')"
            )
        _text(self, "description", limit=MAX_DESCRIPTION_LENGTH)
        _enum(self, "status", BotStatus)
        _enum(self, "category", BotCategory)
        if isinstance(self.tags, str) or not all(isinstance(t, str) for t in self.tags):
            raise _invalid(self, "tags", "expected a list of str")
        _set(self, "tags", list(self.tags))
        if len(self.tags) > MAX_TAGS:
            raise _invalid(
                self, "tags", f"{len(self.tags)} tags, more than the limit of {MAX_TAGS}"
            )
        for tag in self.tags:
            check_length(tag, MAX_TAG_LENGTH, "Bot.tags")
            check_text(tag, "Bot.tags")
        _opt_text(self, "user_id", limit=MAX_USER_ID_LENGTH)
        _uuid(self, "id")
        for name in ("conversation_count", "total_tokens_used", "version_count"):
            _int(self, name)
        _time(self, "created_at")
        _time(self, "updated_at")
        _opt_time(self, "last_active_at")


@dataclass(frozen=True, slots=True, kw_only=True)
class SoulVersion:
    """One version of a bot's soul. Length limits: ``content`` MAX_SOUL_LENGTH, ``message``
    MAX_NOTE_LENGTH."""

    bot_id: uuid.UUID
    content: str
    version: int
    hash: str
    message: str | None = None
    id: uuid.UUID = field(default_factory=new_id)
    created_at: datetime = field(default_factory=utc_now)

    def __post_init__(self) -> None:
        _uuid(self, "bot_id")
        _text(self, "content", limit=MAX_SOUL_LENGTH)
        _int(self, "version", low=1)
        _text(self, "hash", empty=False)
        _opt_text(self, "message", limit=MAX_NOTE_LENGTH)
        _uuid(self, "id")
        _time(self, "created_at")


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatSession:
    """A conversation. Length limits: ``model`` MAX_MODEL_LENGTH, ``title``
    MAX_TITLE_LENGTH, ``user_id`` MAX_USER_ID_LENGTH.

    ``user_id``: the person the conversation is with (the application's own key), or None for
    a session without a user. It never changes; memories extracted from the session belong to
    that user (see docs/users.md)."""

    bot_id: uuid.UUID
    model: str
    title: str | None = None
    id: uuid.UUID = field(default_factory=new_id)
    started_at: datetime = field(default_factory=utc_now)
    ended_at: datetime | None = None
    total_input_tokens: int = 0
    total_output_tokens: int = 0
    message_count: int = 0
    status: SessionStatus = SessionStatus.ACTIVE
    last_activity_at: datetime | None = None
    user_id: str | None = None

    def __post_init__(self) -> None:
        _uuid(self, "bot_id")
        _text(self, "model", empty=False, limit=MAX_MODEL_LENGTH)
        _opt_text(self, "title", limit=MAX_TITLE_LENGTH)
        _uuid(self, "id")
        _time(self, "started_at")
        _opt_time(self, "ended_at")
        _int(self, "total_input_tokens")
        _int(self, "total_output_tokens")
        _int(self, "message_count")
        _enum(self, "status", SessionStatus)
        _opt_time(self, "last_activity_at")
        _owner(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatMessage:
    """One message. Limits: ``content`` MAX_MESSAGE_LENGTH characters, ``model``
    MAX_MODEL_LENGTH, ``stop_reason`` MAX_NOTE_LENGTH, ``metadata`` MAX_METADATA_BYTES of
    compact JSON."""

    session_id: uuid.UUID
    role: MessageRole
    content: str
    id: uuid.UUID = field(default_factory=new_id)
    created_at: datetime = field(default_factory=utc_now)
    input_tokens: int | None = None
    output_tokens: int | None = None
    model: str | None = None
    stop_reason: str | None = None
    response_ms: int | None = None
    metadata: dict[str, Any] | None = None
    seq: int | None = None

    def __post_init__(self) -> None:
        _uuid(self, "session_id")
        _enum(self, "role", MessageRole)
        _text(self, "content", limit=MAX_MESSAGE_LENGTH)
        _uuid(self, "id")
        _time(self, "created_at")
        _opt_int(self, "input_tokens")
        _opt_int(self, "output_tokens")
        _opt_text(self, "model", limit=MAX_MODEL_LENGTH)
        _opt_text(self, "stop_reason", limit=MAX_NOTE_LENGTH)
        _opt_int(self, "response_ms")
        if self.metadata is not None:
            if not isinstance(self.metadata, dict):
                raise _invalid(self, "metadata", "expected a JSON object (dict) or None")
            _check_json(self.metadata, "ChatMessage.metadata")
            size = len((self.metadata_json() or "").encode("utf-8"))
            if size > MAX_METADATA_BYTES:
                raise _invalid(
                    self,
                    "metadata",
                    f"{size} bytes of JSON, larger than the limit of {MAX_METADATA_BYTES}",
                )
        _opt_int(self, "seq", low=1)

    def metadata_json(self) -> str | None:
        """The metadata as compact JSON text, as stored."""
        if self.metadata is None:
            return None
        return json_text(self.metadata)


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageHit:
    """A message found by ``ChatRepository.search_messages`` (made by the store, from stored
    rows): which message it is (its id, session, number, role and time), its session's bot
    and user, the length of its content, and a snippet of the content around the first
    matched word (whitespace runs as one space, "…" where cut) with ``marks``, the (start,
    end) spans of the snippet that matched. A hit is small whatever the message (which may be
    a megabyte): ``ChatRepository.get_message(hit.message_id)`` reads the whole message."""

    message_id: uuid.UUID
    session_id: uuid.UUID
    bot_id: uuid.UUID
    user_id: str | None
    seq: int
    role: MessageRole
    created_at: datetime
    length: int
    snippet: str
    marks: tuple[tuple[int, int], ...] = ()

    def parts(self) -> list[tuple[str, bool]]:
        """The snippet as pieces of text in order, each with whether it matched."""
        out: list[tuple[str, bool]] = []
        at = 0
        for start, end in self.marks:
            if start > at:
                out.append((self.snippet[at:start], False))
            out.append((self.snippet[start:end], True))
            at = end
        if at < len(self.snippet):
            out.append((self.snippet[at:], False))
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class ContextSummary:
    """A summary of messages ``messages_start..messages_end``. Length limit: ``summary``
    MAX_SUMMARY_LENGTH."""

    session_id: uuid.UUID
    summary: str
    messages_start: int
    messages_end: int
    token_count: int
    id: uuid.UUID = field(default_factory=new_id)
    created_at: datetime = field(default_factory=utc_now)

    def __post_init__(self) -> None:
        _uuid(self, "session_id")
        _text(self, "summary", empty=False, limit=MAX_SUMMARY_LENGTH)
        _int(self, "messages_start", low=1)
        _int(self, "messages_end", low=1)
        if self.messages_end < self.messages_start:
            raise _invalid(
                self,
                "messages_end",
                f"range {self.messages_start}..{self.messages_end} ends before it starts",
            )
        _int(self, "token_count")
        _uuid(self, "id")
        _time(self, "created_at")


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryEntry:
    """A long-term memory of a bot. Length limits: ``fact`` MAX_FACT_LENGTH, ``user_id``
    MAX_USER_ID_LENGTH.

    ``user_id``: the person the memory belongs to (only they, and admin listings, see it), or
    None for the bot's own memories, which every conversation of the bot sees. A memory from a
    session has the session's user (see docs/users.md)."""

    bot_id: uuid.UUID
    fact: str
    category: MemoryCategory
    importance: int
    session_id: uuid.UUID | None = None
    source_message_id: uuid.UUID | None = None
    superseded_by: uuid.UUID | None = None
    is_manual: bool = False
    id: uuid.UUID = field(default_factory=new_id)
    created_at: datetime = field(default_factory=utc_now)
    user_id: str | None = None

    def __post_init__(self) -> None:
        _uuid(self, "bot_id")
        _text(self, "fact", empty=False, limit=MAX_FACT_LENGTH)
        _enum(self, "category", MemoryCategory)
        _int(self, "importance", low=1, high=5)
        _opt_uuid(self, "session_id")
        _opt_uuid(self, "source_message_id")
        _opt_uuid(self, "superseded_by")
        if not isinstance(self.is_manual, bool):
            raise _invalid(self, "is_manual", f"expected bool, got {type(self.is_manual).__name__}")
        _uuid(self, "id")
        _time(self, "created_at")
        _owner(self)
        if self.superseded_by == self.id:
            raise _invalid(self, "superseded_by", "a memory cannot supersede itself")

    @property
    def is_live(self) -> bool:
        return self.superseded_by is None


@dataclass(frozen=True, slots=True, kw_only=True)
class PendingExtraction:
    session_id: uuid.UUID
    bot_id: uuid.UUID
    next_attempt_at: datetime = field(default_factory=utc_now)
    attempt_count: int = 0
    last_attempt_at: datetime | None = None
    error_message: str | None = None
    messages_start: int | None = None
    messages_end: int | None = None
    id: uuid.UUID = field(default_factory=new_id)
    created_at: datetime = field(default_factory=utc_now)

    def __post_init__(self) -> None:
        _uuid(self, "session_id")
        _uuid(self, "bot_id")
        _time(self, "next_attempt_at")
        _int(self, "attempt_count")
        _opt_time(self, "last_attempt_at")
        _opt_text(self, "error_message")
        _opt_int(self, "messages_start", low=1)
        _opt_int(self, "messages_end", low=1)
        if (self.messages_start is None) != (self.messages_end is None):
            raise _invalid(self, "messages_start", "give both ends of the range, or neither")
        if (
            self.messages_start is not None
            and self.messages_end is not None
            and self.messages_end < self.messages_start
        ):
            raise _invalid(
                self,
                "messages_end",
                f"range {self.messages_start}..{self.messages_end} ends before it starts",
            )
        _uuid(self, "id")
        _time(self, "created_at")

    @property
    def exhausted(self) -> bool:
        return self.attempt_count >= MAX_EXTRACTION_ATTEMPTS


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryEvent:
    """One change to a memory, from the memory history (kept after the memory is deleted).

    ``job_id``: the extraction job that added it (for ``repeated``: that extracted the
    repeat). ``related_memory_id``: for ``superseded``, the memory that replaced it; for
    ``restored``, the deleted memory that had replaced it. ``fact``: the memory's fact; for
    ``repeated``, the new fact's own words. ``user_id``: whose text the row holds, so erasing
    a user also erases the history of memories deleted before: the memory's user; for
    ``repeated``, the user of the conversation that said it again.
    """

    memory_id: uuid.UUID
    bot_id: uuid.UUID
    event: MemoryEventKind
    actor: MemoryActor
    fact: str
    job_id: uuid.UUID | None = None
    related_memory_id: uuid.UUID | None = None
    id: uuid.UUID = field(default_factory=new_id)
    created_at: datetime = field(default_factory=utc_now)
    user_id: str | None = None

    def __post_init__(self) -> None:
        _uuid(self, "memory_id")
        _uuid(self, "bot_id")
        _enum(self, "event", MemoryEventKind)
        _enum(self, "actor", MemoryActor)
        _text(self, "fact")
        _opt_uuid(self, "job_id")
        _opt_uuid(self, "related_memory_id")
        _uuid(self, "id")
        _time(self, "created_at")
        _owner(self, new=False)


def check_vector(vector: object, what: str = "vector") -> NDArray[np.float32]:
    """``vector`` as a 1-D float32 array of unit length (a zero vector stays zero), refused
    with ``ValidationError`` unless it is a non-empty list of 1..MAX_EMBEDDING_DIMENSION finite
    numbers: the rule for an embedding, wherever it comes from (numpy imported here only)."""
    import numpy as np

    if isinstance(vector, str | bytes):
        raise ValidationError(f"{what} must be a list or array of numbers, not text")
    try:
        with np.errstate(over="ignore", invalid="ignore"):  # too large: inf, refused below
            array = np.asarray(vector, dtype=np.float32)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValidationError(f"{what} must be a list or array of numbers") from exc
    if array.ndim != 1 or not 1 <= array.size <= MAX_EMBEDDING_DIMENSION:
        raise ValidationError(
            f"{what} must be one row of 1..{MAX_EMBEDDING_DIMENSION} numbers, got shape {array.shape}"
        )
    if not np.isfinite(array).all():
        raise ValidationError(f"{what} holds a number that is not finite (or too large)")
    wide = array.astype(np.float64)  # squares of large float32 values overflow float32
    norm = float(np.linalg.norm(wide))
    return array if norm == 0 else (wide / norm).astype(np.float32)
