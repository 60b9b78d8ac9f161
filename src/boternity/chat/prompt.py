"""The system prompt, and turning a stored transcript into a request a provider accepts.

Whatever the store holds (a greeting before any user turn, a user message whose reply failed,
a system note, an empty partial), :func:`to_turns` yields what every provider accepts: turns
that alternate, start and end with a user turn and are never empty. System-role messages
go to the system prompt instead. A request is: system prompt (soul first, always), then the
latest summary as the opening user-side turn (:func:`summary_turn`), then the messages after
the summary's range.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from boternity.llm.base import ChatTurn, CompletionRequest, Role
from boternity.models import Bot, ChatMessage, ContextSummary, MessageRole

__all__ = [
    "CONTINUE_CUE",
    "DEFAULT_INSTRUCTIONS",
    "GREETING_CUE",
    "GREETING_REQUEST",
    "build_request",
    "build_system_prompt",
    "summary_turn",
    "to_turns",
]

#: Put before a leading assistant turn (the greeting): Anthropic needs a user turn first, and
#: the model should see its greeting as the reply to someone arriving.
GREETING_CUE = "[The user has opened a new conversation.]"
#: What the model is asked when it should greet the user (the greeting is then stored as an
#: assistant message, and replayed after GREETING_CUE in later requests).
GREETING_REQUEST = (
    "[The user has opened a new conversation. Greet them in character and introduce yourself"
    " in at most two sentences.]"
)
#: Appended when a transcript would otherwise end with an assistant turn (a request must end
#: with a user turn; a trailing assistant turn would be read as a prefill to continue).
CONTINUE_CUE = "[The user is waiting for your reply.]"

DEFAULT_INSTRUCTIONS = (
    "You are {name}. Always stay in character as described in <soul> and <identity>.\n"
    "Use what you remember (<memories>) and what was said earlier naturally;"
    " do not recite it.\n"
    "If you do not know something about the user, say so instead of inventing it.\n"
    "Be concise unless the user asks for detail."
)


def _section(tag: str, body: str) -> str:
    return f"<{tag}>\n{body.strip()}\n</{tag}>"


def build_system_prompt(
    *,
    bot: Bot,
    soul: str | None,
    model: str,
    memories: Sequence[str] = (),
    notes: Sequence[str] = (),
    instructions: str | None = None,
) -> str:
    """Sections joined by a blank line, in this order: ``<soul>`` (the bot's current soul; it
    is part of every request and never evicted), ``<identity>``, ``<memories>`` (recalled
    lines, if any), ``<session_notes>`` (system-role messages of the window, if any),
    ``<instructions>``. The conversation summary is not here but opens the turns (see
    :func:`summary_turn`), so the system prompt stays the same from turn to turn."""
    sections: list[str] = []
    if soul and soul.strip():
        sections.append(_section("soul", soul))
    identity = [f"Name: {bot.name}"]
    if bot.description.strip():
        identity.append(f"Description: {bot.description.strip()}")
    identity.append(f"Model: {model}")
    sections.append(_section("identity", "\n".join(identity)))
    lines = [" ".join(line.split()) for line in memories]
    lines = [line for line in lines if line]
    if lines:
        body = "Things you remember from past conversations:\n" + "\n".join(
            f"- {line}" for line in lines
        )
        sections.append(_section("memories", body))
    kept = [note.strip() for note in notes if note.strip()]
    if kept:
        sections.append(_section("session_notes", "\n\n".join(kept)))
    text = (instructions if instructions is not None else DEFAULT_INSTRUCTIONS).replace(
        "{name}", bot.name
    )
    if text.strip():
        sections.append(_section("instructions", text))
    return "\n\n".join(sections)


_ROLES: dict[MessageRole, Role] = {MessageRole.USER: "user", MessageRole.ASSISTANT: "assistant"}


def summary_turn(summary: ContextSummary) -> str:
    """The user-side turn that carries the latest summary at the start of a request."""
    return (
        f"[Earlier in this conversation (messages 1-{summary.messages_end}), in brief:\n"
        f"{summary.summary.strip()}]"
    )


def to_turns(
    messages: Iterable[ChatMessage], *, preface: str | None = None
) -> tuple[list[ChatTurn], list[str]]:
    """``(turns, notes)``: the provider turns for ``messages`` (seq order) and the contents of
    their system-role messages. ``preface`` (e.g. :func:`summary_turn`) is a user-side text put
    first.

    Blank messages are skipped; consecutive turns of one role are merged with a blank line
    (e.g. a user message whose reply failed, followed by the next user message); a leading
    assistant turn gets :data:`GREETING_CUE` before it; a trailing one gets
    :data:`CONTINUE_CUE` after it. So the turns always alternate, start and end with a user
    turn, and are never empty.
    """
    turns: list[ChatTurn] = []
    notes: list[str] = []
    if preface is not None and preface.strip():
        turns.append(ChatTurn("user", preface))
    for message in messages:
        if not message.content.strip():
            continue
        if message.role is MessageRole.SYSTEM:
            notes.append(message.content)
            continue
        role = _ROLES[message.role]
        if turns and turns[-1].role == role:
            turns[-1] = ChatTurn(role, f"{turns[-1].content}\n\n{message.content}")
        else:
            turns.append(ChatTurn(role, message.content))
    if turns and turns[0].role == "assistant":
        turns.insert(0, ChatTurn("user", GREETING_CUE))
    if not turns or turns[-1].role == "assistant":
        turns.append(ChatTurn("user", CONTINUE_CUE))
    return turns, notes


def build_request(
    *,
    bot: Bot,
    soul: str | None,
    model: str,
    messages: Sequence[ChatMessage],
    memories: Sequence[str] = (),
    summary: ContextSummary | None = None,
    instructions: str | None = None,
    max_tokens: int = 1024,
    temperature: float | None = None,
) -> CompletionRequest:
    """The request for the next reply: system prompt, then the latest summary, then
    ``messages`` (those after the summary's range)."""
    preface = summary_turn(summary) if summary is not None else None
    turns, notes = to_turns(messages, preface=preface)
    system = build_system_prompt(
        bot=bot,
        soul=soul,
        model=model,
        memories=memories,
        notes=notes,
        instructions=instructions,
    )
    return CompletionRequest(
        model=model,
        messages=turns,
        system=system,
        max_tokens=max_tokens,
        temperature=temperature,
        purpose="reply",
    )
