"""A deterministic local provider: canned replies for trying boternity without an API key.

Nothing here is a language model. Replies start with ``[offline]`` so nobody mistakes them for
one. The same request always gives the same events, which makes it the provider of choice for
tests of the layers above. What it does follows the request's ``purpose`` (set by whoever
built the request; never guessed from the prompt text):

- ``reply``: a canned answer that acknowledges and recalls simple facts;
- ``greeting``: hello, with the bot's name from the system prompt's ``Name:`` line;
- ``title``: a few words from the first user turn;
- ``extraction``: a JSON array of ``{"fact", "category", "importance"}`` found in user turns
  by simple patterns ("my name is X", "I live in X", "I like X", ...);
- ``summary``: a short summary.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass

from boternity.llm.base import (
    END_TURN,
    MAX_TOKENS,
    ChatTurn,
    ClosesOnExit,
    Completion,
    CompletionRequest,
    Done,
    Purpose,
    StreamEvent,
    TextDelta,
    Usage,
    collect,
    estimate_prompt_tokens,
    estimate_tokens,
)
from boternity.text import ellipsis

PREFIX = "[offline] "
DEFAULT_MODEL = "offline"


@dataclass(frozen=True, slots=True)
class Fact:
    key: str  # "name", "home", "likes", ... (for answering questions)
    value: str
    fact: str  # third person, as stored: "User lives in Paris"
    category: str
    importance: int


# A fact's value runs to the end of the clause: punctuation, "and", "but" or the line's end.
_END = r"(?P<value>[^.,;!?\n]+?)\s*(?:$|[.,;!?\n]|\band\b|\bbut\b)"


def _rule(
    starts: str, key: str, template: str, category: str, importance: int
) -> tuple[re.Pattern[str], str, str, str, int]:
    return re.compile(rf"\b(?:{starts}){_END}", re.I), key, template, category, importance


# First person as users say it, third person as stored memories (recalled into the system
# prompt) say it, so the offline bot can "remember" across sessions.
_PATTERNS = [
    _rule("my name is|call me|user'?s name is", "name", "User's name is {}", "fact", 4),
    _rule(
        "i live in|i'm living in|i (?:just |have |'ve )?moved to|i now live in|user lives in",
        "home",
        "User lives in {}",
        "fact",
        4,
    ),
    _rule("i am from|i'm from|user is from", "origin", "User is from {}", "fact", 3),
    _rule("i work as|user works as", "job", "User works as {}", "fact", 3),
    _rule("i work at|i work for|user works at", "work", "User works at {}", "fact", 3),
    _rule(
        "i (?:really )?(?:don't|do not) like|i hate|i dislike|user dislikes",
        "dislikes",
        "User dislikes {}",
        "preference",
        3,
    ),
    _rule(
        "i (?:really )?(?:like|love|enjoy)|user likes", "likes", "User likes {}", "preference", 3
    ),
    _rule("i prefer|user prefers", "prefers", "User prefers {}", "preference", 3),
]
_QUESTIONS: list[tuple[re.Pattern[str], str, str, str]] = [
    (
        re.compile(r"\bwhat(?:'s| is) my name\b|\bwho am i\b", re.I),
        "name",
        "Your name is {}.",
        "I don't know your name yet.",
    ),
    (
        re.compile(r"\bwhere do i live\b", re.I),
        "home",
        "You live in {}.",
        "I don't know where you live yet.",
    ),
    (
        re.compile(r"\bwhat do i (?:like|love|enjoy)\b", re.I),
        "likes",
        "You like {}.",
        "I don't know what you like yet.",
    ),
]
_SECOND_PERSON = {
    "name": "your name is {}",
    "home": "you live in {}",
    "origin": "you are from {}",
    "job": "you work as {}",
    "work": "you work at {}",
    "dislikes": "you dislike {}",
    "likes": "you like {}",
    "prefers": "you prefer {}",
}


_TAG = re.compile(r"<[^>\n]*>")


def user_lines(text: str) -> list[str]:
    """The user's lines of a message. A message may hold a whole transcript ("user: ...",
    "assistant: ..." lines, perhaps in <conversation> tags): only what the user said counts."""
    lines = []
    for line in _TAG.sub("\n", text).splitlines():
        stripped = line.strip()
        lowered = stripped.lower()
        if not stripped or lowered.startswith(("assistant:", "system:", "please summar")):
            continue
        if lowered.startswith("user:"):
            stripped = stripped[5:].strip()
        lines.append(stripped)
    return lines


def find_facts(text: str, *, third_person_only: bool = False) -> list[Fact]:
    """Facts stated in ``text``, in order of appearance, without duplicates.

    ``third_person_only`` reads only "User lives in X"-style statements: in a system prompt,
    "I live in X" is the bot's persona speaking, not the user."""
    found: list[Fact] = []
    for line in user_lines(text):
        matches = []
        for pattern, key, template, category, importance in _PATTERNS:
            for match in pattern.finditer(line):
                if third_person_only and not match.group(0).lower().startswith("user"):
                    continue
                value = " ".join(match.group("value").split()).strip(" \"'")
                if value:
                    fact = Fact(key, value, template.format(value), category, importance)
                    matches.append((match.start(), fact))
        found += [fact for _, fact in sorted(matches, key=lambda item: item[0])]
    unique: dict[str, Fact] = {}
    for fact in found:
        unique.setdefault(fact.fact.lower(), fact)
    return list(unique.values())


def _user_text(turns: Sequence[ChatTurn]) -> list[str]:
    return [turn.content for turn in turns if turn.role == "user"]


def title_for(request: CompletionRequest) -> str:
    first = next(iter(_user_text(request.messages)), "")
    words = re.findall(r"[\w'’-]+", first)[:6]
    if not words:
        return "New conversation"
    title = " ".join(words)
    return title[0].upper() + title[1:]


# boternity's extraction request lists known memories as "[m1] (fact) User lives in Paris" and
# the transcript as "[7] user: ..." lines; other callers may send plain user turns.
_KNOWN = re.compile(r"^\[(?P<id>m\d+)\] \((?P<category>\w+)\) (?P<fact>.+)$")
_NUMBERED = re.compile(r"^\[(?P<seq>\d+)\] (?P<role>user|assistant|system): (?P<text>.*)$")


def extraction_for(request: CompletionRequest) -> str:
    known: dict[str, tuple[str, str]] = {}  # fact key ("home") -> (memory id, value)
    said: list[tuple[int | None, str]] = []
    for text in _user_text(request.messages):
        numbered = False
        for line in text.splitlines():
            if match := _KNOWN.match(line.strip()):
                for fact in find_facts(match["fact"], third_person_only=True):
                    known[fact.key] = (match["id"], fact.value.lower())
            elif match := _NUMBERED.match(line.strip()):
                numbered = True
                if match["role"] == "user":
                    said.append((int(match["seq"]), match["text"]))
        if not numbered:
            said.append((None, text))
    seen: set[str] = set()
    items: list[dict[str, object]] = []
    for seq, text in said:
        for fact in find_facts(text):
            if fact.fact.lower() in seen:
                continue
            seen.add(fact.fact.lower())
            item: dict[str, object] = {
                "fact": fact.fact,
                "category": fact.category,
                "importance": fact.importance,
            }
            if seq is not None:
                item["source_seq"] = seq
            old = known.get(fact.key)
            if old is not None and old[1] != fact.value.lower() and fact.key in _SINGLE_VALUED:
                item["supersedes"] = old[0]  # a new home or name replaces the old one
                item["category"] = "correction"
            items.append(item)
    return json.dumps(items, ensure_ascii=False)


_SINGLE_VALUED = {"name", "home", "job", "work"}


def summary_for(request: CompletionRequest) -> str:
    said = [line for text in _user_text(request.messages) for line in user_lines(text)]
    facts = [fact.fact for line in said for fact in find_facts(line)]
    parts = [f"{PREFIX}Summary:"]
    if facts:
        parts.append("Facts: " + "; ".join(dict.fromkeys(facts)) + ".")
    if said:
        parts.append(
            "The user said: "
            + " / ".join(f'"{ellipsis(s, 60, words=True)}"' for s in said[:3])
            + "."
        )
    else:
        parts.append("Nothing much was said.")
    return " ".join(parts)


def reply_for(request: CompletionRequest) -> str:
    users = _user_text(request.messages)
    last = users[-1] if users else ""
    # What the bot "knows": facts from the whole conversation and from recalled memories that
    # the chat engine put in the system prompt (e.g. "User lives in Paris").
    known: dict[str, str] = {}
    for fact in find_facts(request.system or "", third_person_only=True):
        known[fact.key] = fact.value
    for text in users:
        for fact in find_facts(text):
            known[fact.key] = fact.value
    for pattern, key, answer, unknown in _QUESTIONS:
        if pattern.search(last):
            return PREFIX + (answer.format(known[key]) if key in known else unknown)
    stated = find_facts(last)
    if stated:
        noted = "; ".join(_SECOND_PERSON[f.key].format(f.value) for f in stated)
        return f"{PREFIX}Noted: {noted}."
    if not last.strip():
        return f"{PREFIX}Hello! I'm the offline provider: I give canned replies."
    return (
        f'{PREFIX}You said: "{ellipsis(last, 80, words=True)}". This is a canned reply; set ANTHROPIC_API_KEY,'
        " OPENAI_API_KEY or OPENAI_BASE_URL to talk to a real model."
    )


_NAME = re.compile(r"^Name: (?P<name>.+)$", re.M)


def greeting_for(request: CompletionRequest) -> str:
    match = _NAME.search(request.system or "")
    name = match["name"].strip() if match else "your assistant"
    return f"{PREFIX}Hello, I'm {name}! Tell me about yourself and I'll remember it."


_ANSWERS: dict[Purpose, Callable[[CompletionRequest], str]] = {
    "reply": reply_for,
    "greeting": greeting_for,
    "title": title_for,
    "summary": summary_for,
    "extraction": extraction_for,
}


def answer(request: CompletionRequest) -> str:
    """The full reply text for a request (the stream is this, cut into pieces): chosen by the
    request's purpose, never guessed from its text (a bot whose soul talks of titles and
    summaries still gets replies)."""
    return _ANSWERS[request.purpose](request)


class OfflineProvider(ClosesOnExit):
    """Canned, deterministic replies streamed word by word; usage is the chars/4 estimate."""

    name = "offline"
    label = "offline (canned replies)"

    def __init__(
        self,
        *,
        default_model: str | None = None,
        context_window_tokens: int = 8_192,
        delay: float = 0.0,
    ) -> None:
        self.default_model = default_model or DEFAULT_MODEL
        self._context_window = context_window_tokens
        self._delay = delay  # seconds between deltas, to look like a stream in demos

    def __repr__(self) -> str:
        return f"OfflineProvider(default_model={self.default_model!r})"

    def context_window(self, model: str) -> int:
        return self._context_window

    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    async def stream(self, request: CompletionRequest) -> AsyncGenerator[StreamEvent, None]:
        text = answer(request)
        stop = END_TURN
        if estimate_tokens(text) > request.max_tokens:
            text, stop = text[: request.max_tokens * 4], MAX_TOKENS
        for piece in re.findall(r"\s*\S+\s*|\s+", text):
            await asyncio.sleep(self._delay)
            yield TextDelta(piece)
        yield Usage(estimate_prompt_tokens(request), estimate_tokens(text))
        yield Done(stop)

    async def complete(self, request: CompletionRequest) -> Completion:
        return await collect(self.stream(request), model=request.model)
