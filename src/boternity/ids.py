"""Identifiers and clocks shared by every layer."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from uuid_utils.compat import uuid7


def new_id() -> uuid.UUID:
    """A UUIDv7: time-ordered, so ids created later sort later (used as the last tie-breaker)."""
    return uuid7()


def utc_now() -> datetime:
    return datetime.now(UTC)
