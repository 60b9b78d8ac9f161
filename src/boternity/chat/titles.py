"""Session titles: asked of the model after the first exchange, cleaned, never empty."""

from __future__ import annotations

import re

from boternity.llm.base import ChatTurn, CompletionRequest
from boternity.text import ellipsis

__all__ = [
    "FALLBACK_TITLE",
    "MAX_TITLE_CHARS",
    "TITLE_SYSTEM_PROMPT",
    "clean_title",
    "fallback_title",
    "title_request",
]

MAX_TITLE_CHARS = 60
FALLBACK_TITLE = "New conversation"

TITLE_SYSTEM_PROMPT = (
    "You write a short title for a conversation. Reply with ONLY the title: 3 to 7 words,"
    " in the conversation's language, no quotes, no trailing punctuation, no preamble.\n"
    "Examples:\n"
    "Planning a trip to Japan\n"
    "Debugging a Python import error\n"
    "Favourite science fiction novels"
)
TITLE_ASK = "Write a 3-7 word title for the conversation above. Reply with the title only."

# Straight and typographic quotes, backticks, and markdown emphasis the model may wrap it in.
_WRAPPERS = "\"'`“”‘’«»„‚*_# \t"
_LABEL = re.compile(r"^\s*(?:\*\*)?title(?:\*\*)?\s*[:\-–—]\s*", re.IGNORECASE)


def title_request(model: str, user_text: str, reply_text: str) -> CompletionRequest:
    """First user message, first reply, then the ask (the request ends with a user turn)."""
    return CompletionRequest(
        model=model,
        system=TITLE_SYSTEM_PROMPT,
        messages=[
            ChatTurn("user", user_text),
            ChatTurn("assistant", reply_text),
            ChatTurn("user", TITLE_ASK),
        ],
        max_tokens=50,
        temperature=0.3,
        purpose="title",
    )


def clean_title(raw: str, *, limit: int = MAX_TITLE_CHARS) -> str:
    """The title in a model's reply: its first non-blank line without a ``Title:`` label,
    surrounding quotes/markdown and trailing punctuation, whitespace collapsed, cut to
    ``limit`` characters. May be "" (the caller then falls back)."""
    line = next((line for line in raw.splitlines() if line.strip()), "")
    line = _LABEL.sub("", line)
    previous = None
    while previous != line:
        previous = line
        line = line.strip(_WRAPPERS).rstrip(".,;:").strip()
    return ellipsis(line, limit, words=True)


def fallback_title(user_text: str, *, words: int = 6, limit: int = MAX_TITLE_CHARS) -> str:
    """The first words of the user's first message; never empty."""
    title = clean_title(" ".join(user_text.split()[:words]), limit=limit)
    return title or FALLBACK_TITLE
