"""gateway.fastjson writes and reads JSON as the standard library does, whichever codec is underneath."""
from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, strategies as st

from gateway import fastjson
from gateway.formats import sse

# JSON values as clients and upstreams send them: any text (emoji, CJK, control characters, U+2028), big ints.
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=20,
)


def stdlib(obj: object) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


@given(VALUES)
def test_dumps_writes_the_stdlib_bytes(obj):
    assert fastjson.dumps(obj) == stdlib(obj)
    assert fastjson.loads(fastjson.dumps(obj)) == obj


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_floats_come_back_as_the_same_number(value):
    assert fastjson.loads(fastjson.dumps({"x": value})) == {"x": value}


@pytest.mark.parametrize("obj", [{1: "int key"}, [2**70]])
def test_what_orjson_refuses_is_written_by_the_stdlib(obj):
    assert fastjson.dumps(obj) == stdlib(obj)


def test_a_lone_surrogate_fails_as_it_did_with_the_stdlib():
    with pytest.raises(UnicodeEncodeError):
        stdlib({"lone": "\ud800"})
    with pytest.raises(UnicodeEncodeError):
        fastjson.dumps({"lone": "\ud800"})


def test_loads_accepts_and_rejects_what_the_stdlib_does():
    assert math.isnan(fastjson.loads(b'{"x": NaN}')["x"])
    assert fastjson.loads(b' {"a" : [1, 2.5e3, "\\u00e9"]} ') == {"a": [1, 2500.0, "é"]}
    with pytest.raises(ValueError) as theirs:
        json.loads(b'{"a": }')
    with pytest.raises(ValueError) as ours:
        fastjson.loads(b'{"a": }')
    assert str(ours.value) == str(theirs.value) == "Expecting value: line 1 column 7 (char 6)"


def test_sse_writers_use_it_and_write_the_same_events():
    obj = {"type": "content_block_delta", "delta": {"text": "héllo \u2028 \n"}}
    assert sse._dumps is fastjson.dumps  # installed when gateway.fastjson is imported
    assert sse.named_event(obj) == b"event: content_block_delta\ndata: " + stdlib(obj) + b"\n\n"
    assert sse.data_event([1]) == b"data: [1]\n\n"


def test_orjson_does_the_work_when_installed():
    orjson = pytest.importorskip("orjson")
    assert fastjson.dumps({"a": [1]}) == orjson.dumps({"a": [1]})
    assert fastjson.dumps is not fastjson._std_dumps
