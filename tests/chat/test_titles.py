"""Title clean-up and fallback (pure functions)."""

from __future__ import annotations

import pytest

from boternity.chat.titles import (
    FALLBACK_TITLE,
    MAX_TITLE_CHARS,
    clean_title,
    fallback_title,
    title_request,
)
from boternity.text import ellipsis


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('"Planning a trip to Japan"', "Planning a trip to Japan"),
        ("  'Quoted'  ", "Quoted"),
        ("“Typographic quotes”", "Typographic quotes"),
        ("Title: Debugging imports.", "Debugging imports"),
        ('**Title:** "Bold label"', "Bold label"),
        ("\n\n  First line\nsecond line", "First line"),
        ("'\"nested\"'", "nested"),
        ("Why   so    spaced?", "Why so spaced?"),
        ('""', ""),
        ("", ""),
    ],
)
def test_clean_title(raw: str, expected: str) -> None:
    assert clean_title(raw) == expected


def test_long_titles_are_cut_on_characters_not_bytes() -> None:
    title = clean_title("é" * 40 + " " + "日本語" * 30)
    assert len(title) <= MAX_TITLE_CHARS
    assert title.endswith("…")
    title.encode("utf-8")  # no split code points
    assert ellipsis("abc", 10, words=True) == "abc"
    assert len(ellipsis("x" * 100, 10, words=True)) == 10


def test_fallback_title_is_first_words_and_never_empty() -> None:
    assert fallback_title("how do I   fix this import error in python please") == (
        "how do I fix this import"
    )
    assert fallback_title('""') == FALLBACK_TITLE
    assert fallback_title("  ") == FALLBACK_TITLE


def test_title_request_ends_with_a_user_turn() -> None:
    request = title_request("m", "hello", "hi there")
    assert [t.role for t in request.messages] == ["user", "assistant", "user"]
    assert request.max_tokens == 50
