"""What a message search hit shows, made the same way on every backend.

The database marks the words it matched (SQLite's ``highlight``, PostgreSQL's ``ts_headline``)
with two Unicode noncharacters, which are reserved for a program's own use. Here those words are
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


def _marked_words(marked: str) -> set[str]:
    return {fold(word[0]) for region in _MARKED.findall(marked) for word in _WORD.finditer(region)}


def snippet(content: str, marked: str) -> tuple[str, Marks]:
    """A snippet of ``content`` around its first matched word, whitespace runs as one space,
    "…" where cut; and the (start, end) spans of the snippet's matched words. ``marked`` is the
    start of the content as the database marked it (see the module docstring)."""
    wanted = _marked_words(marked)
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
    if start + len(raw) < len(content) and not text.endswith(ELLIPSIS):
        text += ELLIPSIS
    body = len(text) - 1 if text.endswith(ELLIPSIS) else len(text)
    lead = ELLIPSIS if start > 0 else ""
    marks = tuple(
        (w.start() + len(lead), w.end() + len(lead))
        for w in _WORD.finditer(text, 0, body)
        if fold(w[0]) in wanted
    )
    return lead + text, marks
