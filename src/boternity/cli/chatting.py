"""The machinery of ``bnity chat`` (see ``boternity.cli.chat``): the async core, the two
ways of showing a conversation, and the conversation loop."""

from __future__ import annotations

import asyncio
import queue
import sys
import threading
import unicodedata
import uuid
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING

from boternity.cli.chat import LATEST
from boternity.cli.output import plural
from boternity.cli.output import text as safe  # every shown string goes through it

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderResult
    from rich.live import Live
    from rich.text import Text

    from boternity.chat import ChatEngine, LiveSession, Turn
    from boternity.chat.engine import QueueReport
    from boternity.cli.loop import LoopThread
    from boternity.llm import LlmProvider
    from boternity.models import Bot, ChatMessage, ChatSession
    from boternity.repositories import AnyUser
    from boternity.store import Store


HISTORY_DEFAULT = 10
#: How long leaving a chat may wait for its final memory extraction (Ctrl+C skips it; the
#: job stays queued for ``bnity queue run`` or the next chat).
EXIT_EXTRACTION_SECONDS = 60.0
WORKER_INTERVAL = 5.0
#: Memories the background worker embeds per pass (one batch: a pass never runs long).
EMBED_PER_PASS = 256
PALETTE = ("cyan", "magenta", "green", "yellow", "blue", "bright_cyan", "bright_magenta")

#: /history N beyond this shows this many (a terminal cannot usefully show more).
HISTORY_MAX = 10_000
_NOT_UTF8 = "this line is not valid UTF-8 (byte {byte}); nothing was sent"

HELP_TEXT = """\
Commands:
  /help              this list
  /exit              end the session (Ctrl+D does the same)
  /new               end this session and start a new one
  /history [N]       the last N messages of this session (default 10)
  /remember FACT     save a fact to the bot's memory now
  /edit [TEXT]       write a long message in $VISUAL or $EDITOR, then send it
  /sessions          the bot's recent sessions
  //text             send "/text" as a message
Pasting several lines sends them as one message.
Ctrl+C cancels a reply in progress (what was said is kept)."""


# --- the async side ---------------------------------------------------------------------------


class ChatCore:
    """Everything that runs on the loop: opened by ``open``, closed by ``close``."""

    def __init__(
        self,
        db: str | None,
        bot_ref: str,
        *,
        resume: str | None,
        provider: str | None,
        model: str | None,
        user: str | None = None,
        embeddings: str | None = None,
    ) -> None:
        self.db = db
        self.bot_ref = bot_ref
        self.resume = resume
        #: Who the conversation is with (``--user``); a resumed session's user otherwise.
        self.user = user
        self.provider_name = provider
        self.model = model
        self.embeddings = embeddings  # --embeddings: local, openai or none
        self.notice: str | None = None
        self.embedder_note: str | None = None
        self.startup_report: QueueReport | None = None
        self._stack = AsyncExitStack()
        self.live: LiveSession | None = None
        self.ended: LiveSession | None = None  # the session ended last
        self.session_ref = ""  # the live session's id as printed (set by start)

    async def open(self) -> None:
        from boternity.chat import ChatEngine
        from boternity.cli.resolve import resolve_bot
        from boternity.cli.runtime import embedder_or_note
        from boternity.llm import RetryPolicy, select_provider
        from boternity.memory import ExtractionWorker, MemoryRecall
        from boternity.store import open_store

        stack = self._stack
        self.store: Store = await stack.enter_async_context(open_store(self.db, readers=2))
        self.bot: Bot = await resolve_bot(self.store, self.bot_ref)
        llm, self.notice = select_provider(
            self.provider_name, self.model, retry=RetryPolicy.interactive()
        )
        self.provider: LlmProvider = await stack.enter_async_context(llm)
        self.offline = self.provider.name == "offline"
        # Recall finds memories by meaning with the embedder; new memories are embedded by
        # the worker, a batch per pass, never inline with a reply (no embedder: memories
        # are found by shared words only).
        embedder, self.embedder_note = embedder_or_note(self.embeddings)
        if embedder is not None:
            stack.push_async_callback(embedder.aclose)
        # The engine owns the worker; its background loop starts after the catch-up pass.
        self.engine: ChatEngine = ChatEngine(
            self.store,
            self.provider,
            recall=MemoryRecall(self.store, embedder=embedder),
            worker=ExtractionWorker(
                self.store, self.provider, embedder=embedder, embed_per_pass=EMBED_PER_PASS
            ),
            worker_interval=WORKER_INTERVAL,
            start_worker=False,
        )
        await stack.enter_async_context(self.engine)  # recovers crashed sessions
        # On the way out the worker stops first: a session still live is ended after it, so
        # its final job stays queued untouched (for the next chat or bnity queue run).
        stack.push_async_callback(self.engine.stop_worker)

    async def catch_up(self) -> None:
        """Process the bot's due extraction jobs, then keep the worker running."""
        # Jobs left for this bot (failed before, or queued by a crashed session) go first, so
        # this conversation already recalls what they hold.
        self.startup_report = await self.engine.run_queue(bot_id=self.bot.id)
        await self.start_worker()

    async def start_worker(self) -> None:
        """The engine's background worker: due jobs of any bot, while the chat lasts."""
        self.engine.start_worker()

    async def start(self, *, greet: bool) -> LiveSession:
        """A new session, or the one ``--resume`` named (only the first time)."""
        from boternity.cli.resolve import resolve_session
        from boternity.errors import NotFoundError, ValidationError

        if self.resume is not None:
            ref, self.resume = self.resume, None
            if ref == LATEST:
                recent = await self.store.chat.list_sessions(
                    self.bot.id, user_id=self.users(), limit=1
                )
                if not recent:
                    whose = "" if self.user is None else f" with user {self.user!r}"
                    raise NotFoundError(f"bot {self.bot.slug!r} has no session{whose} to resume")
                target = recent[0]
            else:
                target = await resolve_session(self.store, ref, bot_id=self.bot.id)
                if target.bot_id != self.bot.id:
                    raise ValidationError(
                        f"session {target.id} belongs to another bot, not {self.bot.slug!r}"
                    )
                if self.user is not None and target.user_id != self.user:
                    raise ValidationError(
                        f"session {target.id} is not a session of user {self.user!r}"
                    )
            self.live = await self.engine.resume_session(target.id)
            self.user = target.user_id  # /new goes on with the same person
        else:
            self.live = await self.engine.start_session(self.bot, greet=greet, user_id=self.user)
        self.session_ref = await self.ref(self.live.id)
        return self.live

    def users(self) -> str | AnyUser:
        """Whose sessions to list: the user's, or everyone's without ``--user``."""
        from boternity.repositories import ANY_USER

        return ANY_USER if self.user is None else self.user

    async def ref(self, session_id: uuid.UUID) -> str:
        """The id as printed: its shortest prefix unique in the database now."""
        from boternity.cli.resolve import unique_prefix

        return await unique_prefix(self.store, "session", session_id)

    async def send(self, text: str) -> Turn:
        assert self.live is not None
        return self.live.send(text)

    async def pump(self, turn: Turn, out: queue.Queue[str | None]) -> ChatMessage:
        """Forward the reply's text to the main thread as it streams."""
        try:
            async for piece in turn:
                out.put(piece)
            return await turn
        finally:
            out.put(None)

    async def settle(self, turn: Turn) -> ChatMessage | None:
        """Wait for a cancelled turn to store what was said; its stored partial reply."""
        with suppress(Exception, asyncio.CancelledError):
            await turn
        return turn.reply

    async def end(self) -> ChatSession | None:
        live, self.live = self.live, None
        if live is None:
            return None
        self.ended = live
        return await live.end()

    async def recent(self, n: int) -> list[ChatMessage]:
        assert self.live is not None
        return await self.store.chat.get_recent_messages(self.live.id, n)

    async def sessions(self) -> tuple[list[ChatSession], dict[uuid.UUID, str]]:
        from boternity.cli.resolve import unique_prefixes

        sessions = await self.store.chat.list_sessions(self.bot.id, user_id=self.users(), limit=10)
        return sessions, await unique_prefixes(self.store, "session", [s.id for s in sessions])

    async def remember(self, fact: str) -> str:
        from boternity.errors import ConflictError
        from boternity.memory import remember

        assert self.live is not None
        try:
            saved = await remember(
                self.store,
                self.bot.id,
                fact,
                session_id=self.live.id,
                user_id=self.live.session.user_id,
            )
        except ConflictError:
            return f"Already remembered: {' '.join(fact.split())}"
        return f"Remembered: {saved.fact}"

    async def stop_worker(self) -> None:
        await self.engine.stop_worker()

    async def final_extraction(self) -> QueueReport:
        """The ended session's final job (and any other due job of the bot), now."""
        assert self.ended is not None
        return await asyncio.wait_for(
            self.engine.final_extraction(self.ended), timeout=EXIT_EXTRACTION_SECONDS
        )

    async def close(self) -> None:
        # The worker stops, the engine ends what is still live, then provider and store close.
        await self._stack.aclose()


# --- rendering ----------------------------------------------------------------------------------


def bot_colour(bot: Bot) -> str:
    return PALETTE[bot.id.int % len(PALETTE)]


def bot_emoji(bot: Bot) -> str:
    """The emoji the bot's name starts with, if any."""
    first = bot.name[:1]
    return first if first and unicodedata.category(first) == "So" else ""


def bot_label(bot: Bot) -> str:
    emoji = bot_emoji(bot)
    name = bot.name[len(emoji) :].strip() if emoji else bot.name
    return f"{emoji} {name}" if emoji else name


def _model_label(model: str, provider: str) -> str:
    """ "gpt-4o · openai", but "offline (canned replies)", never "offline · offline"."""
    return provider if provider.split(" ")[0] == model else f"{model} · {provider}"


def footer(reply: ChatMessage, *, offline: bool) -> str:
    seconds = (reply.response_ms or 0) / 1000
    last = "offline: canned reply" if offline else reply.model or "?"
    return " · ".join([f"{reply.output_tokens:,} tokens", f"{seconds:.1f}s", last])


class Ui:
    """How a conversation is shown; ``TerminalUi`` and ``PlainUi`` fill it in."""

    def __init__(self, core: ChatCore) -> None:
        from boternity.cli.output import console

        self.core = core
        self.out: Console = console()
        self.err: Console = console(stderr=True)
        self._lock = threading.RLock()  # what is on screen, between the two threads
        self._held: list[str] = []

    def read(self) -> str:
        raise NotImplementedError

    def notice(self, text: str) -> None:
        self.flush_warnings()
        self.err.print(safe(text, style="yellow"))

    def info(self, text: str) -> None:
        self.flush_warnings()
        self.err.print(safe(text, style="dim"))

    def error(self, text: str) -> None:
        self.flush_warnings()
        self.err.print(safe(f"error: {' '.join(text.split())}", style="red"))

    def say(self, text: str) -> None:
        """Output of a slash command."""
        self.flush_warnings()
        self.out.print(safe(text))

    def warn(self, line: str) -> None:
        """A library warning (a retried request, a failed title or extraction pass), from
        any thread: shown now if that cannot cut into a line being drawn (a streamed reply,
        the prompt), else held until the main thread next prints."""
        with self._lock:
            if not self._show_warning(line):
                self._held.append(line)

    def _show_warning(self, line: str) -> bool:
        self.err.print(safe(line, style="yellow"), soft_wrap=True)
        return True

    def flush_warnings(self) -> None:
        """Show held warnings (main thread, where nothing is half-drawn)."""
        with self._lock:
            held, self._held = self._held, []
            for line in held:
                self.err.print(safe(line, style="yellow"), soft_wrap=True)

    def started(self, live: LiveSession, resumed: list[ChatMessage] | None) -> None:
        raise NotImplementedError

    def greeting(self, message: ChatMessage) -> None:
        raise NotImplementedError

    def reply_start(self) -> None:
        raise NotImplementedError

    def delta(self, text: str) -> None:
        raise NotImplementedError

    def reply_end(self, reply: ChatMessage | None, *, cancelled: bool = False) -> None:
        raise NotImplementedError

    @contextmanager
    def busy(self, what: str) -> Iterator[None]:
        yield


class PlainUi(Ui):
    """For pipes and files: replies as plain text on stdout, one turn per input line; status
    and notices go to stderr."""

    def __init__(self, core: ChatCore) -> None:
        super().__init__(core)
        self._streamed = False

    def read(self) -> str:
        """The next line, decoded here as UTF-8 whatever the locale (undecodable bytes
        become lone surrogates, which ``Conversation`` refuses)."""
        self.flush_warnings()
        stdin = getattr(sys.stdin, "buffer", None)
        if stdin is None:
            line = sys.stdin.readline()
        else:
            line = stdin.readline().decode("utf-8", "surrogateescape")
        if not line:
            raise EOFError
        return line.rstrip("\r\n")

    def _show_warning(self, line: str) -> bool:
        return not self._streamed and super()._show_warning(line)

    def started(self, live: LiveSession, resumed: list[ChatMessage] | None) -> None:
        verb = "resumed" if resumed is not None else "started"
        user = live.session.user_id
        self.info(
            f"session {live.id} {verb} with {live.bot.slug}"
            + ("" if user is None else f" for user {user}")
        )

    def greeting(self, message: ChatMessage) -> None:
        self.reply_start()
        self.delta(message.content)
        self.reply_end(message)

    def reply_start(self) -> None:
        self._streamed = False

    def delta(self, text: str) -> None:
        from boternity.cli.output import visible

        with self._lock:  # a partial line is on stdout: warnings wait for its end
            self._streamed = True
            sys.stdout.write(visible(text))
            sys.stdout.flush()

    def reply_end(self, reply: ChatMessage | None, *, cancelled: bool = False) -> None:
        with self._lock:
            if self._streamed:
                sys.stdout.write("\n")
                sys.stdout.flush()
            self._streamed = False
        self.flush_warnings()


class TerminalUi(Ui):
    """A spinner until the first token, the reply streaming as text, then rendered as
    Markdown, then a stats footer."""

    def __init__(self, core: ChatCore) -> None:
        super().__init__(core)
        with suppress(ImportError):  # line editing and history for input(); not on Windows
            import readline  # noqa: F401
        from boternity.cli.output import visible

        self.colour = bot_colour(core.bot)
        self.label = visible(bot_label(core.bot))
        self._live: Live | None = None
        self._text = ""
        self._overlay: Console | None = None  # a console showing a Live (spinner, reply)
        self._prompt: str | None = None  # while input() shows it

    def read(self) -> str:
        from boternity.errors import ValidationError

        prompt = "You › "
        self.flush_warnings()
        with self._lock:
            self._prompt = prompt
        try:
            return input(prompt)
        except EOFError:
            self.out.print()
            raise
        except UnicodeDecodeError as exc:  # a strict locale; others give surrogates
            raise ValidationError(_NOT_UTF8.format(byte=exc.start)) from exc
        finally:
            with self._lock:
                self._prompt = None

    def _show_warning(self, line: str) -> bool:
        if self._overlay is not None:  # Rich prints it above the spinner or the reply
            self._overlay.print(safe(line, style="yellow"), soft_wrap=True)
            return True
        if self._prompt is None:
            return False  # the main thread is drawing: held until it next prints
        # Over the prompt line, then the prompt again with what was typed so far.
        typed = ""
        with suppress(Exception):
            import readline

            typed = readline.get_line_buffer()
        from boternity.cli.output import visible

        sys.stdout.write("\r\x1b[2K")
        sys.stdout.flush()
        self.out.print(safe(line, style="yellow"), soft_wrap=True)
        sys.stdout.write(self._prompt + visible(typed))
        sys.stdout.flush()
        return True

    def _header(self) -> None:
        from rich.text import Text

        self.out.print(Text(self.label, style=f"bold {self.colour}"))

    def started(self, live: LiveSession, resumed: list[ChatMessage] | None) -> None:
        from rich.text import Text

        from boternity.text import ellipsis

        core = self.core
        line = Text()
        line.append(f"{self.label}", style=f"bold {self.colour}")
        line.append_text(safe(f" ({core.bot.slug})", style="dim"))
        self.out.print(line)
        self.out.print(
            safe(
                f"{_model_label(live.session.model, core.provider.label)}"
                f" · session {core.session_ref}"
                + ("" if live.session.user_id is None else f" · user {live.session.user_id}"),
                style="dim",
            )
        )
        if resumed is not None:
            title = live.session.title or "untitled"
            self.out.print(
                safe(
                    f"Resuming “{title}” ({plural(live.session.message_count, 'message')} so far):",
                    style="dim",
                )
            )
            for m in resumed:
                who = "You" if m.role.value == "user" else self.label
                self.out.print(safe(f"  {who}: {ellipsis(m.content, 200)}", style="dim"))
        self.out.print(Text("Type /help for commands; Ctrl+D or /exit ends the session.", "dim"))

    def greeting(self, message: ChatMessage) -> None:
        from rich.markdown import Markdown

        from boternity.cli.output import visible

        self._header()
        self.out.print(Markdown(visible(message.content)))
        self.out.print()

    def reply_start(self) -> None:
        from rich.live import Live
        from rich.spinner import Spinner

        self.flush_warnings()
        self._header()
        self._text = ""
        # While streaming, the live area never grows past the screen (Rich cannot redraw
        # lines that scrolled away: a taller reply was printed again on every refresh); the
        # whole reply is printed once when the live area stops.
        self._live = Live(
            Spinner("dots", text=f"{self.label} is thinking…", style=self.colour),
            console=self.out,
            refresh_per_second=12,
            vertical_overflow="crop",
        )
        self._live.start()
        with self._lock:
            self._overlay = self.out

    def delta(self, text: str) -> None:
        from rich.text import Text

        from boternity.cli.output import visible

        self._text += visible(text)  # also what Markdown renders at the end
        if self._live is not None:
            self._live.update(_Tail(Text(self._text)))

    def reply_end(self, reply: ChatMessage | None, *, cancelled: bool = False) -> None:
        from rich.markdown import Markdown
        from rich.text import Text

        with self._lock:
            self._overlay = None
        live, self._live = self._live, None
        if live is not None:
            if self._text:
                live.update(Markdown(self._text) if not cancelled else Text(self._text))
            else:
                live.update(Text(""))
            live.stop()
        if cancelled:
            self.out.print(Text("(reply cancelled; what was said is kept)", style="yellow"))
        elif reply is not None:
            self.out.print(safe(footer(reply, offline=self.core.offline), style="dim"))
        self.out.print()
        self.flush_warnings()

    @contextmanager
    def busy(self, what: str) -> Iterator[None]:
        self.flush_warnings()
        with self.err.status(what, spinner="dots"):
            with self._lock:
                self._overlay = self.err
            try:
                yield
            finally:
                with self._lock:
                    self._overlay = None
        self.flush_warnings()


class _Tail:
    """The last lines of a renderable that fit on the screen (below the bot's name and
    above the prompt), for a live area that must never scroll."""

    def __init__(self, renderable: Text) -> None:
        self.renderable = renderable

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        from rich.segment import Segment

        lines = console.render_lines(self.renderable, options, pad=False)
        keep = max(console.height, 3) - 2
        for line in lines[-keep:]:
            yield from line
            yield Segment.line()


# --- the conversation (main thread) -----------------------------------------------------------


@dataclass
class Conversation:
    bg: LoopThread
    core: ChatCore
    ui: Ui
    greet: bool
    failed_turns: int = 0

    def run(self) -> bool:
        """Talk until /exit or the end of input; True when a reply failed (piped mode)."""
        from boternity.errors import ValidationError

        core, ui = self.core, self.ui
        if core.offline:
            ui.notice(
                core.notice
                or "Using the offline provider: replies are canned, not from a language model."
            )
        if core.embedder_note:
            ui.notice(core.embedder_note)
        try:
            with ui.busy("Processing queued memory extractions… (Ctrl+C to skip)"):
                self.bg.call(core.catch_up())
        except KeyboardInterrupt:
            ui.info("Skipped processing the extraction queue; its jobs stay queued.")
            self.bg.call(core.start_worker())
        report = core.startup_report
        if report is not None and report.claimed:
            ui.info(_report_line("Queued memory extraction", report))
        self._start()
        while True:
            try:
                line = utf8_line(ui.read())
            except EOFError:
                break
            except KeyboardInterrupt:
                ui.say("")
                ui.info("(Ctrl+D or /exit ends the session)")
                continue
            except ValidationError as exc:  # like a message that cannot be stored
                self.failed_turns += 1
                ui.error(str(exc))
                continue
            text = line.strip()
            if not text:
                continue
            if text.startswith("/") and not text.startswith("//"):
                try:
                    if self._command(text):
                        break
                except Exception as exc:  # one line, and the chat goes on
                    if core.live is None:  # e.g. /new could not start a session
                        raise
                    ui.error(_describe(exc))
                continue
            if text.startswith("//"):
                text = text[1:]
            self._turn(text)
        self._end(final=True)
        return isinstance(self.ui, PlainUi) and self.failed_turns > 0

    def _start(self) -> None:
        resuming = self.core.resume is not None
        with self.ui.busy("Resuming…" if resuming else "Starting…"):
            live = self.bg.call(self.core.start(greet=self.greet))
        recent = self.bg.call(self.core.recent(4)) if resuming else None
        self.ui.started(live, recent)
        if live.greeting is not None:
            self.ui.greeting(live.greeting)

    def _end(self, *, final: bool) -> None:
        ended = self.bg.call(self.core.end())
        if ended is None:
            return
        ref = self.bg.call(self.core.ref(ended.id))
        summary = f"Session {ref} {ended.status.value} ({plural(ended.message_count, 'message')})."
        if not final:
            self.ui.info(summary)
            return
        try:
            with self.ui.busy("Saving memories from this session… (Ctrl+C to leave it queued)"):
                report = self.bg.call(self.core.final_extraction())
        except KeyboardInterrupt:
            self.ui.info(f"{summary} Memory extraction left in the queue (bnity queue run).")
            return
        except TimeoutError:
            self.ui.info(f"{summary} Memory extraction left in the queue (bnity queue run).")
            return
        self.ui.info(f"{summary} {_report_line('Memory extraction', report)}")

    def _turn(self, text: str) -> None:
        from boternity.errors import BoternityError, SessionLostError

        bg, ui = self.bg, self.ui
        try:
            turn = bg.call(self.core.send(text))
        except SessionLostError:
            raise
        except BoternityError as exc:  # e.g. NUL in the text: nothing was sent or stored
            self.failed_turns += 1
            ui.error(str(exc))
            return
        pieces: queue.Queue[str | None] = queue.Queue()
        future = bg.submit(self.core.pump(turn, pieces))
        ui.reply_start()
        try:
            while (piece := pieces.get()) is not None:
                ui.delta(piece)
            reply = future.result()
        except KeyboardInterrupt:
            bg.soon(turn.cancel)
            partial = bg.call(self.core.settle(turn))
            ui.reply_end(partial, cancelled=True)
            return
        except SessionLostError:
            ui.reply_end(None, cancelled=False)
            raise  # another process has the session now: the chat ends with one error line
        except BoternityError as exc:
            self.failed_turns += 1
            ui.reply_end(None, cancelled=False)
            ui.error(f"no reply: {exc}")
            return
        ui.reply_end(reply)

    def _command(self, text: str) -> bool:
        """Run a slash command; True when the conversation should end."""
        from boternity.cli.output import fmt_time
        from boternity.text import ellipsis

        word, _, rest = text.partition(" ")
        word, rest = word.lower(), rest.strip()
        core, ui, bg = self.core, self.ui, self.bg
        if word in ("/help", "/h", "/?"):
            ui.say(HELP_TEXT)
        elif word in ("/exit", "/quit", "/q"):
            return True
        elif word == "/new":
            self._end(final=False)
            self._start()
        elif word == "/history":
            n = HISTORY_DEFAULT
            if rest:
                digits = rest.lstrip("0")
                if not (rest.isascii() and rest.isdigit() and digits):
                    ui.error("usage: /history [N] (N a positive number)")
                    return False
                n = min(int(digits) if len(digits) <= 9 else HISTORY_MAX, HISTORY_MAX)
            messages = bg.call(core.recent(n))
            if not messages:
                ui.say("No messages yet.")
            for m in messages:
                who = "You" if m.role.value == "user" else bot_label(core.bot)
                ui.say(f"[{m.seq}] {who}: {ellipsis(m.content, 300)}")
        elif word in ("/remember", "/rem"):
            if not rest:
                ui.error("usage: /remember FACT")
                return False
            ui.say(bg.call(core.remember(rest)))  # a bad fact: an error line, see run()
        elif word == "/edit":
            if not isinstance(ui, TerminalUi):
                ui.error("/edit needs a terminal (piped input sends each line as a message)")
                return False
            written = edit_message(rest)
            if written is None:
                ui.info("Nothing sent (the message was empty).")
            else:
                self._turn(written)
        elif word == "/sessions":
            sessions, prefixes = bg.call(core.sessions())
            current = core.live.id if core.live is not None else None
            for s in sessions:
                mark = "*" if s.id == current else " "
                ui.say(
                    f"{mark} {prefixes[s.id]}  {fmt_time(s.started_at)}  {s.status.value:<9}"
                    f" {s.message_count:>4} msgs  {ellipsis(s.title or '(untitled)', 50)}"
                )
        else:
            ui.error(f"unknown command {word} (try /help)")
        return False


def edit_message(start: str) -> str | None:
    """Open $VISUAL or $EDITOR (else vi) on a private temporary file holding ``start``; the
    text saved there, or None when it is empty. A failing editor is an error, not a send."""
    import os
    import shlex
    import subprocess
    import tempfile

    from boternity.errors import ValidationError

    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    fd, path = tempfile.mkstemp(prefix="bnity-message-", suffix=".md")  # 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(start)
        try:
            done = subprocess.run([*shlex.split(editor), path], check=False)
        except (OSError, ValueError) as exc:
            raise ValidationError(f"cannot run the editor {editor!r}: {exc}") from exc
        if done.returncode != 0:
            raise ValidationError(
                f"the editor {editor!r} exited with status {done.returncode}; nothing was sent"
            )
        with open(path, "rb") as fh:
            text = utf8_line(fh.read().decode("utf-8", "surrogateescape"))
    finally:
        os.unlink(path)
    text = text.strip("\n")
    return text if text.strip() else None


def utf8_line(line: str) -> str:
    """``line`` if it is text; undecodable input bytes (lone surrogates) are refused with
    the same error whichever way the line was read, instead of being stored mangled."""
    from boternity.errors import ValidationError

    try:
        line.encode("utf-8")
    except UnicodeEncodeError as exc:
        byte = len(line[: exc.start].encode("utf-8", "surrogateescape"))
        raise ValidationError(_NOT_UTF8.format(byte=byte)) from exc
    return line


def _describe(exc: Exception) -> str:
    from boternity.errors import BoternityError

    if isinstance(exc, BoternityError):
        return str(exc)
    return f"unexpected {type(exc).__name__}: {exc}"


def _report_line(what: str, report: QueueReport) -> str:
    from boternity.cli.output import plural
    from boternity.memory.extraction import MAX_FACTS_PER_JOB

    if not report.claimed:
        return f"{what}: nothing due."
    parts = [f"{plural(report.memories_saved, 'memory', 'memories')} saved"]
    if report.superseded:
        parts.append(f"{report.superseded} superseded")
    if report.repeated:
        parts.append(f"{report.repeated} already remembered")
    if report.dropped:
        parts.append(
            f"{plural(report.dropped, 'more fact')} dropped"
            f" (at most {MAX_FACTS_PER_JOB} new facts per job)"
        )
    if report.failed or report.exhausted:
        parts.append(
            f"{report.failed + report.exhausted} of {plural(report.claimed, 'job')} failed"
            " (see bnity queue)"
        )
    return f"{what}: " + ", ".join(parts) + "."
