"""The SSE parser and the usage meter: whatever the chunking and line ends, the same events and usage.

The relay meters a same-format stream from raw blocks (parsing only events with
usage); that must agree with parsing every event, which the translators do.
"""
from __future__ import annotations

import json

import pytest
from hypothesis import given, strategies as st

from gateway.formats.meter import UsageMeter
from gateway.formats.sse import Event, SSEParser, block_name

ANTHROPIC = [
    ("message_start", {"type": "message_start", "message": {"id": "msg_1", "usage": {
        "input_tokens": 12, "output_tokens": 1, "cache_read_input_tokens": 7, "cache_creation_input_tokens": 3}}}),
    ("ping", {"type": "ping"}),
    ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
    *[("content_block_delta", {"type": "content_block_delta", "index": 0,
                               "delta": {"type": "text_delta", "text": f"wörd{i} \u2028"}}) for i in range(5)],
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 42}}),
    ("message_stop", {"type": "message_stop"}),
]
RESPONSES = [
    ("response.created", {"type": "response.created", "response": {"id": "resp_1"}}),
    *[("response.output_text.delta", {"type": "response.output_text.delta", "delta": f"w{i}"}) for i in range(5)],
    ("response.completed", {"type": "response.completed", "response": {"id": "resp_1", "usage": {
        "input_tokens": 20, "input_tokens_details": {"cached_tokens": 5}, "output_tokens": 9,
        "output_tokens_details": {"reasoning_tokens": 4}}}}),
]


def wire(events: list[tuple[str, dict]], *, sequence: bool = False, newline: str = "\n") -> bytes:
    out = []
    for n, (name, data) in enumerate(events):
        body = {**data, "sequence_number": n} if sequence else data
        out.append(f"event: {name}{newline}data: {json.dumps(body, ensure_ascii=False)}{newline}{newline}")
    return "".join(out).encode()


def reference(raw: bytes) -> list[Event]:
    """Events by the book: normalise line ends, split on blank lines, read the fields."""
    text = raw.decode().replace("\r\n", "\n").replace("\r", "\n")
    events = []
    for block in text.split("\n\n"):
        name, data = "", []
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
        if name or data:
            events.append(Event(name, "\n".join(data)))
    return events


def split(raw: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(raw)) for c in cuts})
    return [raw[a:b] for a, b in zip([0, *points], [*points, len(raw)])]


def parse_all(chunks: list[bytes]) -> list[Event]:
    parser = SSEParser()
    events = [e for chunk in chunks for e in parser.feed(chunk)]
    return events + list(parser.finish())


def meter_by_events(fmt: str, chunks: list[bytes]) -> UsageMeter:
    meter = UsageMeter(fmt)
    for event in parse_all(chunks):
        meter.feed(event)
    return meter


def meter_by_blocks(fmt: str, chunks: list[bytes]) -> UsageMeter:
    meter, parser = UsageMeter(fmt), SSEParser()
    for chunk in chunks:
        meter.feed_blocks(parser.blocks(chunk))
    for event in parser.finish():
        meter.feed(event)
    return meter


def meter_by_scan(fmt: str, chunks: list[bytes]) -> UsageMeter:
    """As the relay meters a same-format stream: complete events unsplit, only named ones parsed."""
    meter, parser = UsageMeter(fmt), SSEParser()
    for chunk in chunks:
        meter.feed_complete(parser.complete(chunk))
    for event in parser.finish():
        meter.feed(event)
    return meter


def summary(meter: UsageMeter) -> tuple:
    return meter.usage, meter.terminal, meter.error_type, meter.last_sequence


@given(st.sampled_from(["\n", "\r\n", "\r"]), st.lists(st.integers(0, 3000), max_size=12))
def test_any_chunking_and_line_ends_give_the_events_of_the_whole_stream(newline, cuts):
    raw = wire(ANTHROPIC, newline=newline) + b": keep-alive comment" + newline.encode() * 2 + wire(RESPONSES)
    assert parse_all(split(raw, cuts)) == reference(raw)


def test_a_crlf_split_between_chunks_is_one_line_end_not_an_event_boundary():
    parser = SSEParser()
    assert list(parser.feed(b"event: ping\r")) == []
    assert not parser.at_boundary
    assert list(parser.feed(b"\ndata: {}\r\n")) == []
    assert [(e.event, e.data) for e in parser.feed(b"\r\n")] == [("ping", "{}")]
    assert parser.at_boundary


def test_an_unterminated_last_event_comes_out_of_finish():
    parser = SSEParser()
    assert list(parser.feed(b'event: message_stop\r\ndata: {"type":"message_stop"}')) == []
    assert [e.event for e in parser.finish()] == ["message_stop"]


def test_block_names_match_the_parsed_events():
    raw = wire(ANTHROPIC) + b"data: [DONE]\n\n" + b'data: {"a":1}\nevent: late_name\n\n'
    blocks = SSEParser().blocks(raw)
    assert [block_name(b) for b in blocks] == [e.event for e in reference(raw)]


@given(st.lists(st.integers(0, 2000), max_size=10))
def test_metering_raw_blocks_agrees_with_metering_every_event_anthropic(cuts):
    chunks = split(wire(ANTHROPIC), cuts)
    by_blocks = meter_by_blocks("anthropic", chunks)
    assert summary(by_blocks) == summary(meter_by_events("anthropic", chunks)) == summary(meter_by_scan("anthropic", chunks))
    assert (by_blocks.usage.input, by_blocks.usage.output, by_blocks.usage.cache_read,
            by_blocks.usage.cache_write, by_blocks.terminal) == (12, 42, 7, 3, True)


@given(st.lists(st.integers(0, 2000), max_size=10), st.integers(1, len(RESPONSES)))
def test_metering_raw_blocks_agrees_with_metering_every_event_responses(cuts, kept):
    # Cut the stream after ``kept`` events: a stream that ended early still knows its last sequence number.
    chunks = split(wire(RESPONSES[:kept], sequence=True), cuts)
    by_blocks = meter_by_blocks("responses", chunks)
    assert summary(by_blocks) == summary(meter_by_events("responses", chunks)) == summary(meter_by_scan("responses", chunks))
    assert by_blocks.last_sequence == kept - 1
    assert by_blocks.terminal == (kept == len(RESPONSES))


@pytest.mark.parametrize("meter_by", [meter_by_blocks, meter_by_scan])
def test_an_error_event_is_metered_without_parsing_every_event(meter_by):
    raw = wire([ANTHROPIC[0], ("error", {"type": "error", "error": {"type": "overloaded_error", "message": "x"}})])
    meter = meter_by("anthropic", [raw])
    assert (meter.error_type, meter.terminal, meter.usage.input) == ("overloaded_error", True, 12)


# Responses streams in odd orders: an error after deltas keeps the deltas' number; deltas after the
# completed event move it on; an "event:" spelled without a space takes the careful path.
ODD = [
    RESPONSES[:3] + [("error", {"type": "error", "code": "server_error"})],
    RESPONSES[:2] + [RESPONSES[-1]] + RESPONSES[2:4],
    RESPONSES[:3] + [("response.failed", {"type": "response.failed", "response": {"error": {"code": "boom"}}})],
]


@pytest.mark.parametrize("events", ODD)
@given(cuts=st.lists(st.integers(0, 2000), max_size=6))
def test_odd_responses_streams_meter_alike(events, cuts):
    for raw in (wire(events, sequence=True), wire(events, sequence=True).replace(b"event: ", b"event:")):
        chunks = split(raw, cuts)
        expected = summary(meter_by_events("responses", chunks))
        assert summary(meter_by_scan("responses", chunks)) == expected
        assert summary(meter_by_blocks("responses", chunks)) == expected


def test_a_consumer_that_stops_early_leaves_the_rest_buffered():
    raw = wire(ANTHROPIC)
    parser = SSEParser()
    for event in parser.feed(raw[:-5]):
        if event.event == "ping":
            break
    rest = list(parser.feed(raw[-5:]))
    assert [e.event for e in rest] == [name for name, _ in ANTHROPIC[2:]]
    assert parser.at_boundary
