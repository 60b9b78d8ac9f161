"""The SSE decoder on its own: framing at every split, line endings, comments, multi-line data."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from boternity.llm.sse import SseDecoder, SseEvent

# LF, CRLF and bare-CR line endings, a comment, a BOM, multi-line data, a multi-byte character,
# an event with no data (not dispatched), a field without a colon, id and retry.
STREAM = (
    "\ufeff: keep-alive comment\r\n"
    "event: first\r\n"
    'data: {"text": "h\u00e9llo \u2713"}\r\n'
    "\r\n"
    "data: line one\n"
    "data:line two\n"
    "data\n"
    "id: 7\n"
    "\n"
    "event: nothing\r"
    "\r"
    "event: third\r"
    "data:  two spaces\r"
    "retry: 1500\r"
    "\r"
    ": trailing comment\n"
    "data: unfinished"
).encode()

EXPECTED = [
    SseEvent("first", '{"text": "h\u00e9llo \u2713"}'),
    SseEvent("message", "line one\nline two\n", id="7"),
    SseEvent("third", " two spaces", id="7", retry=1500),
]


def decode(pieces: list[bytes]) -> list[SseEvent]:
    decoder = SseDecoder()
    events: list[SseEvent] = []
    for piece in pieces:
        events += decoder.feed(piece)
    return events + decoder.close()


def test_whole_stream() -> None:
    assert decode([STREAM]) == EXPECTED


def test_every_split_point() -> None:
    for cut in range(len(STREAM) + 1):
        assert decode([STREAM[:cut], STREAM[cut:]]) == EXPECTED, f"split at byte {cut}"


def test_one_byte_at_a_time() -> None:
    assert decode([bytes([b]) for b in STREAM]) == EXPECTED


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_any_set_of_split_points(cuts: list[int]) -> None:
    bounds = [0, *sorted(cuts), len(STREAM)]
    assert decode([STREAM[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]) == EXPECTED


def test_crlf_split_between_cr_and_lf_is_one_line_ending() -> None:
    decoder = SseDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\n\r") == [SseEvent(data="a")]
    assert decoder.feed(b"\ndata: b\n\n") == [SseEvent(data="b")]


def test_an_incomplete_event_at_the_end_is_discarded() -> None:
    decoder = SseDecoder()
    assert decoder.feed(b"data: complete\n\ndata: cut short\n") == [SseEvent(data="complete")]
    assert decoder.close() == []


def test_invalid_utf8_is_replaced_not_raised() -> None:
    assert decode([b"data: \xff\xfe ok\n\n"]) == [SseEvent(data="\ufffd\ufffd ok")]
