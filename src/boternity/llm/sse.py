"""An incremental Server-Sent Events decoder: bytes in, events out.

Follows the WHATWG event-stream rules: lines end in CRLF, LF or CR; ``:`` starts a comment;
``data`` lines of one event are joined with newlines; an empty line dispatches the event; an
event still incomplete when the stream ends is discarded (a cut stream never yields half an
event). Bytes may be split anywhere, including inside a UTF-8 character or between CR and LF.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

_EOL = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True, slots=True)
class SseEvent:
    event: str = "message"
    data: str = ""
    id: str | None = None
    retry: int | None = None


class SseDecoder:
    def __init__(self) -> None:
        self._text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""  # an unterminated line
        self._skip_lf = False  # the last chunk ended in CR: a leading LF belongs to it
        self._started = False
        self._event = ""
        self._data: list[str] = []
        self._id: str | None = None
        self._retry: int | None = None

    def feed(self, chunk: bytes) -> list[SseEvent]:
        text = self._text.decode(chunk)
        if not self._started and text:
            self._started = True
            text = text.removeprefix("\ufeff")
        if self._skip_lf and text:
            self._skip_lf = False
            text = text.removeprefix("\n")
        events: list[SseEvent] = []
        if not text:
            return events
        buffer = self._buffer + text
        start = 0
        # The kept buffer holds no line ending, so the search starts in the new text.
        for match in _EOL.finditer(buffer, len(self._buffer)):
            self._line(buffer[start : match.start()], events)
            start = match.end()
        # A CR at the very end may be the first half of a CRLF split across chunks.
        self._skip_lf = start == len(buffer) and buffer.endswith("\r")
        self._buffer = buffer[start:]
        return events

    def close(self) -> list[SseEvent]:
        """End of stream: per the spec a pending, undispatched event is discarded."""
        self._text.decode(b"", final=True)
        self._buffer = ""
        self._data = []
        self._event = ""
        return []

    def _line(self, line: str, events: list[SseEvent]) -> None:
        if not line:
            if self._data:
                events.append(
                    SseEvent(self._event or "message", "\n".join(self._data), self._id, self._retry)
                )
            self._event = ""
            self._data = []
            return
        if line.startswith(":"):
            return  # comment / keep-alive
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\x00" not in value:
                self._id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self._retry = int(value)
