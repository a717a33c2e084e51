"""Feeding recorded SSE the way a network delivers it: in random chunks that split lines and UTF-8."""
from __future__ import annotations

import random
from typing import Any

from gateway.formats.sse import Event, SSEParser


def events_from(text: str, seed: int = 0, max_chunk: int = 40) -> list[Event]:
    """Parse ``text`` fed in random 1..max_chunk byte chunks."""
    raw, rng, parser = text.encode(), random.Random(seed), SSEParser()
    out: list[Event] = []
    pos = 0
    while pos < len(raw):
        size = rng.randint(1, max_chunk)
        out += parser.feed(raw[pos:pos + size])
        pos += size
    return out + list(parser.finish())


def replay(translator: Any, raw: str, seed: int, eof: bool = True) -> list[bytes]:
    """Feed every event of ``raw`` to a stream translator; the bytes it returned, in order."""
    out: list[bytes] = []
    for event in events_from(raw, seed, max_chunk=64):
        out += translator.feed(event)
    if eof:
        out += translator.finish()
    return out
