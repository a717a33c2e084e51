"""JSON on the /v1 path: orjson when it is installed, the standard library otherwise, same bytes either way.

``dumps`` gives what ``json.dumps(obj, ensure_ascii=False, separators=(",", ":"))``
gives, as UTF-8 bytes (floats in exponent form are spelled the short way, ``1e-7``
for ``1e-07``, the same number; NaN, which JSON lacks, becomes ``null``); ``loads`` accepts and rejects what ``json.loads`` does (a
body orjson refuses, such as one with ``NaN``, is handed to the standard library,
which parses it or raises its own error message). orjson parses and serialises
the relay's bodies several times faster (the profile in docs/PERFORMANCE.md).

The pure layer (gateway.formats, gateway.translate) imports only the standard
library; ``install()`` hands these functions to its SSE writer and parser.
"""
from __future__ import annotations

import json
from typing import Any

from gateway.formats import sse

try:
    import orjson
except ImportError:  # pragma: no cover - orjson is in requirements.txt; the fallback keeps a bare install working
    orjson = None  # type: ignore[assignment]


def _std_dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


if orjson is not None:
    _orjson_dumps, _orjson_loads, _OrjsonError = orjson.dumps, orjson.loads, orjson.JSONDecodeError

    def dumps(obj: Any) -> bytes:
        """Compact UTF-8 JSON, as the standard library writes it."""
        try:
            return _orjson_dumps(obj)
        except TypeError:  # non-string keys, integers past 64 bits, lone surrogates: the stdlib copes
            return _std_dumps(obj)

    def loads(data: bytes | str) -> Any:
        """Parse JSON like ``json.loads``: same values, same errors."""
        try:
            return _orjson_loads(data)
        except _OrjsonError:
            return json.loads(data)
else:  # pragma: no cover
    dumps = _std_dumps
    loads = json.loads


def install() -> None:
    """Let the pure SSE writer and parser use these (they stay importable with the stdlib alone)."""
    sse.use_json(loads, dumps)


install()
