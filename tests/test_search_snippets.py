"""core.search: the snippet and marks of a message search hit, from what the database marked.

The conformance suite checks them through both backends; these check the rules themselves,
whatever the database's marked text looks like."""

from __future__ import annotations

import re
from importlib import resources

import pytest
from hypothesis import given
from hypothesis import strategies as st

from boternity.storage.search import (
    LEAD,
    MARK_CLOSE,
    MARK_OPEN,
    SEARCHED_CHARS,
    SNIPPET_CHARS,
    fold,
    snippet,
)


def mark(word: str) -> str:
    return f"{MARK_OPEN}{word}{MARK_CLOSE}"


def marked_words(text: str, marks: tuple[tuple[int, int], ...]) -> list[str]:
    return [text[s:e] for s, e in marks]


def test_every_occurrence_of_a_marked_word_is_marked_as_written() -> None:
    content = "Zoë met ZOE and zoe\u0308 at the zoo"
    text, marks = snippet(content, f"{mark('zoe')} met ...")  # folded, as PostgreSQL marks
    assert text == content
    assert marked_words(text, marks) == ["Zoë", "ZOE", "zoe\u0308"]


def test_a_long_message_is_cut_around_its_first_match() -> None:
    content = "alpha " * 100 + "needle in  the\nhaystack " + "omega " * 100
    text, marks = snippet(content, mark("needle"))
    assert text.startswith("…alpha") and text.endswith("…")
    assert len(text) <= SNIPPET_CHARS + 1
    assert marked_words(text, marks) == ["needle"]
    assert text.index("needle") <= LEAD + 1
    assert "needle in the haystack" in text  # whitespace runs are one space


def test_no_marked_word_shows_the_start() -> None:
    content = "word " * 100
    text, marks = snippet(content, "")
    assert text.startswith("word word") and text.endswith("…") and marks == ()
    assert snippet("", "") == ("", ())


def test_only_the_searched_start_is_scanned_for_the_first_match() -> None:
    content = "x " * SEARCHED_CHARS + "late"
    text, marks = snippet(content, mark("late"))
    assert marks == () and text.startswith("x x")


@given(content=st.text(max_size=400), marked=st.text(max_size=400))
def test_any_marked_text_gives_marks_inside_the_snippet(content: str, marked: str) -> None:
    text, marks = snippet(content, marked)
    assert len(text) <= SNIPPET_CHARS + 2
    assert all(0 <= s < e <= len(text) for s, e in marks)
    assert list(marks) == sorted(marks)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_the_migrations_index_the_searched_start(backend: str) -> None:
    sql = (
        resources.files(f"boternity.backends.{backend}.migrations")
        .joinpath("0005_message_search.sql")
        .read_text(encoding="utf-8")
    )
    cuts = re.findall(r"(?:substr\(\w+(?:\.\w+)?, 1|left\(\w+), (\d+)\)", sql)
    assert len(cuts) == (4 if backend == "sqlite" else 1)  # the view and every trigger
    assert {int(n) for n in cuts} == {SEARCHED_CHARS}


def test_fold_folds_what_both_backends_fold() -> None:
    assert fold("ZOË") == fold("zoe\u0308") == "zoe"
    assert fold("Søren") != fold("soren")  # as SQLite and boternity_fold: ø is its own letter
