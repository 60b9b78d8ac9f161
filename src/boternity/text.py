"""Small text rules every layer shares (importable from anywhere: depends on nothing else).

:func:`ellipsis` is the one way boternity shortens text: a title, a preview in a table, a
quote in a canned reply.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["ELLIPSIS", "REPLACEMENT", "ellipsis", "storable"]

ELLIPSIS = "…"

#: What stands for a character no backend can store.
REPLACEMENT = "\ufffd"
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(text: str) -> str:
    """``text`` with each character no backend can store (NUL, a lone surrogate: not UTF-8)
    replaced by U+FFFD, as a decoder marks what it could not read. For text from outside
    (a model's reply) that must be kept whatever it holds."""
    return _UNSTORABLE.sub(REPLACEMENT, text) if _UNSTORABLE.search(text) else text


#: Trailing characters a word-boundary cut drops before the ellipsis ("Rome, Paris,…").
_DANGLING = " ,;:-–—"


def ellipsis(text: str | None, width: int, *, single_line: bool = True, words: bool = False) -> str:
    """``text`` cut to at most ``width`` characters (code points, never bytes), ending in "…"
    when cut. Combining marks, variation selectors, skin tones, ZWJ sequences and flag pairs
    stay with their base character. With ``single_line`` all runs of whitespace (newlines
    included) become one space first. With ``words`` the cut moves back to a word boundary
    when one is in the second half, and dangling punctuation goes too."""
    if text is None:
        return ""
    if single_line:
        text = " ".join(text.split())
    if width < 1:
        return ""
    if len(text) <= width:
        return text
    cut = width - 1
    while cut > 0 and not _boundary(text, cut):
        cut -= 1
    head = text[:cut]
    if not words:
        return head.rstrip() + ELLIPSIS
    if " " in head[width // 2 :]:
        head = head.rsplit(" ", 1)[0]
    return head.rstrip(_DANGLING) + ELLIPSIS


_ZWJ = "\u200d"


def _extends(ch: str) -> bool:
    """Belongs to the character before it: accents, variation selectors, skin tones."""
    code = ord(ch)
    return (
        unicodedata.category(ch) in ("Mn", "Mc", "Me")
        or 0xFE00 <= code <= 0xFE0F
        or 0x1F3FB <= code <= 0x1F3FF
        or 0xE0020 <= code <= 0xE007F  # emoji tag sequences (subdivision flags)
        or ch == _ZWJ
    )


def _is_regional(ch: str) -> bool:
    return 0x1F1E6 <= ord(ch) <= 0x1F1FF


def _boundary(text: str, i: int) -> bool:
    """Whether cutting before ``text[i]`` keeps every visible character whole (a close,
    dependency-free approximation of a grapheme-cluster boundary)."""
    if _extends(text[i]) or text[i - 1] == _ZWJ:
        return False
    if _is_regional(text[i]) and _is_regional(text[i - 1]):
        run = 0  # flags are pairs of regional indicators: cut only between pairs
        j = i - 1
        while j >= 0 and _is_regional(text[j]):
            run += 1
            j -= 1
        return run % 2 == 0
    return True
