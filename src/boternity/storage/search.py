"""What a message search hit shows, made the same way on every backend.

The database marks the words it matched (SQLite's ``highlight``, PostgreSQL's ``ts_headline``)
with two Unicode noncharacters, which are reserved for a program's own use (a message may
still hold them: PostgreSQL marks a copy where they are spaces, and SQLite's marks are told
from them by where they stand). Here those words are
read back, folded as both backends fold them, and every word of the message that folds to one
of them is marked in a short snippet around the first. So stemming and accent rules stay the
database's, and the snippet (its length, its cut, its marks) is the same whichever database
found the message.
"""

from __future__ import annotations

import re
import unicodedata

from boternity.text import ELLIPSIS, ellipsis

#: Put around each matched word by the search statements.
MARK_OPEN, MARK_CLOSE = "\ufdd0", "\ufdd1"
#: The full-text index covers this many characters at the start of each message, on every
#: backend (migration 0005): a PostgreSQL tsvector must stay under 1 MB whatever the words,
#: and at most about 10 bytes of vector per character of text keep this far under it.
SEARCHED_CHARS = 50_000
#: A snippet is at most this many characters, and starts at most LEAD characters before the
#: first matched word.
SNIPPET_CHARS = 160
LEAD = 50
#: What a search reads of each hit's content: all a snippet can show (it starts before a
#: word in the searched start, and takes at most 4 * SNIPPET_CHARS characters from there).
#: A hit never carries the whole message, which may be a megabyte.
READ_CHARS = SEARCHED_CHARS + 4 * SNIPPET_CHARS

# A word as both backends' tokenizers see one: letters and digits (no underscore), with the
# combining marks that belong to them.
_WORD = re.compile(
    r"(?:[^\W_]|[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f])+"
)
_MARKED = re.compile(f"{MARK_OPEN}([^{MARK_CLOSE}]*){MARK_CLOSE}")
_SPACE = re.compile(r"\s")

Marks = tuple[tuple[int, int], ...]


def fold(word: str) -> str:
    """A word as compared here: without its diacritics, case-folded. Folds at least what both
    backends fold (SQLite's remove_diacritics, boternity_fold), so a word the database marked
    (folded on PostgreSQL) compares equal to the word as written."""
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _marked_regions(marked: str, source: str) -> list[str]:
    """The marked regions of ``marked``, ``source`` with the marks put in, when ``source``
    holds marker characters of its own: a marker character is the source's while it is the
    next character of the source, a mark otherwise. (When one of each stand side by side,
    which one is the mark does not matter: a marker character is never part of a word.)"""
    regions: list[str] = []
    region: list[str] | None = None
    at = 0
    for c in marked:
        if at < len(source) and c == source[at]:
            at += 1
            if region is not None:
                region.append(c)
        elif c == MARK_OPEN:
            region = []
        elif c == MARK_CLOSE and region is not None:
            regions.append("".join(region))
            region = None
    return regions


def _marked_words(marked: str, source: str | None) -> set[str]:
    if source is None or (MARK_OPEN not in source and MARK_CLOSE not in source):
        regions = _MARKED.findall(marked)
    else:
        regions = _marked_regions(marked, source)
    return {fold(word[0]) for region in regions for word in _WORD.finditer(region)}


def snippet(
    content: str, marked: str, *, in_content: bool = False, length: int | None = None
) -> tuple[str, Marks]:
    """A snippet of ``content`` around its first matched word, whitespace runs as one space,
    "…" where cut; and the (start, end) spans of the snippet's matched words. ``marked`` is the
    start of the content as the database marked it (see the module docstring): with
    ``in_content``, the first SEARCHED_CHARS characters of ``content`` themselves with the
    marks put in (the message's own marker characters are told from the marks by where they
    stand); otherwise a text with no marker characters but the marks. ``content`` may be the
    first READ_CHARS characters only, with ``length`` the whole content's."""
    wanted = _marked_words(marked, content[:SEARCHED_CHARS] if in_content else None)
    first = next(
        (w for w in _WORD.finditer(content, 0, SEARCHED_CHARS) if fold(w[0]) in wanted), None
    )
    start = 0
    if first is not None and first.start() > LEAD:
        start = first.start() - LEAD
        # Begin at a word: after the first space in the lead, if there is one.
        space = _SPACE.search(content, start, first.start())
        start = space.end() if space else start
    # Enough raw text to fill the snippet even if whitespace runs shrink on the way.
    raw = content[start : start + 4 * SNIPPET_CHARS]
    text = ellipsis(" ".join(raw.split()), SNIPPET_CHARS, words=True)
    total = len(content) if length is None else length
    if start + len(raw) < total and not text.endswith(ELLIPSIS):
        text += ELLIPSIS
    body = len(text) - 1 if text.endswith(ELLIPSIS) else len(text)
    lead = ELLIPSIS if start > 0 else ""
    marks = tuple(
        (w.start() + len(lead), w.end() + len(lead))
        for w in _WORD.finditer(text, 0, body)
        if fold(w[0]) in wanted
    )
    return lead + text, marks
