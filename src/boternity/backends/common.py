"""Argument checks every backend applies the same way, before touching the database."""

from __future__ import annotations

import uuid
from datetime import timedelta
from enum import StrEnum
from typing import TypeVar

from boternity.errors import ValidationError
from boternity.models import ChatMessage

E = TypeVar("E", bound=StrEnum)


def check_page(limit: int | None, offset: int | None) -> tuple[int | None, int]:
    """Validate paging; returns (limit or None for all, offset >= 0)."""
    for name, value in (("limit", limit), ("offset", offset)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValidationError(f"{name} must be an int or None, got {type(value).__name__}")
        if value is not None and value < 0:
            raise ValidationError(f"{name} must be >= 0, got {value}")
    return limit, offset or 0


def check_limit(limit: int, name: str = "limit") -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ValidationError(f"{name} must be an int >= 0, got {limit!r}")
    return limit


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


def check_enum(kind: type[E], value: E | str | None, name: str) -> E | None:
    if value is None:
        return None
    try:
        return kind(value)
    except ValueError as exc:
        allowed = ", ".join(m.value for m in kind)
        raise ValidationError(
            f"{name}: unknown value {value!r} (expected one of: {allowed})"
        ) from exc


def check_lease(lease: timedelta) -> timedelta:
    if not isinstance(lease, timedelta) or lease <= timedelta(0):
        raise ValidationError(f"lease must be a positive timedelta, got {lease!r}")
    return lease


def with_seq(message: ChatMessage, seq: int) -> ChatMessage:
    """The saved message with its seq, without re-validating (possibly 1 MB) content that
    was checked when the message was built."""
    copy = object.__new__(ChatMessage)
    for name in ChatMessage.__dataclass_fields__:
        object.__setattr__(copy, name, getattr(message, name))
    object.__setattr__(copy, "seq", seq)
    return copy
