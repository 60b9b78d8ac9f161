"""The one truncation rule (boternity.text.ellipsis), in its word-boundary form."""

from __future__ import annotations

from boternity.text import ellipsis


def test_words_cut_on_a_word_boundary_without_dangling_punctuation() -> None:
    assert ellipsis("Rome, Paris, Berlin and Vienna", 16, words=True) == "Rome, Paris…"
    assert ellipsis("one two three", 20, words=True) == "one two three"
    # No space in the second half: cut on characters, still whole characters.
    assert ellipsis("abcdefgh klmnopqrstuvwxyz", 20, words=True) == "abcdefgh klmnopqrst…"
    assert ellipsis("e\u0301" * 30, 9, words=True) == "e\u0301" * 4 + "…"
