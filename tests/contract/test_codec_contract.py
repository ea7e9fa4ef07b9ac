"""Serializer and compressor contracts, on every installed one."""
from __future__ import annotations

import tracemalloc
from typing import Any

import pytest

from corekit.messages import task_body
from corekit.serialization import BodyTooLarge, Compressor, Serializer
from corekit.pluginmanager import default_manager

PM = default_manager()

SERIALIZERS = sorted(PM.registry("serializers"))
COMPRESSORS = sorted(PM.registry("compressors"))
BODY = task_body([1, 2.5, "ünï", None, True, [1, 2], {"k": "v"}], {"x": {"nested": [1]}},
                 callbacks=[{"task": "t", "args": [], "kwargs": {}, "options": {},
                             "subtask_type": None, "immutable": False, "chord_size": None}])


def normalise(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [normalise(v) for v in value]
    if isinstance(value, dict):
        return {k: normalise(v) for k, v in value.items()}
    return value


@pytest.mark.parametrize("name", SERIALIZERS)
def test_serializer_round_trips_a_protocol_v2_body(name: str) -> None:
    s = PM.registry("serializers")[name]
    assert isinstance(s, Serializer) and s.name == name
    assert "/" in s.content_type and s.content_encoding in ("utf-8", "binary")
    data = s.dumps(BODY)
    assert isinstance(data, bytes)
    assert normalise(s.loads(data)) == normalise(BODY)


@pytest.mark.parametrize("name", SERIALIZERS)
def test_serializer_rejects_garbage(name: str) -> None:
    s = PM.registry("serializers")[name]
    with pytest.raises(Exception):
        s.loads(b"\xc1\xff{not valid in any format")


@pytest.mark.parametrize("name", COMPRESSORS)
def test_compressor_round_trip(name: str) -> None:
    c = PM.registry("compressors")[name]
    assert isinstance(c, Compressor) and c.name == name and "/" in c.content_type
    data = b"corekit " * 1000
    packed = c.compress(data)
    assert len(packed) < len(data) and c.decompress(packed, 1 << 20) == data
    assert c.decompress(c.compress(b""), 1 << 20) == b""
    with pytest.raises(Exception):
        c.decompress(b"definitely not compressed", 1 << 20)
    with pytest.raises(Exception):
        c.decompress(packed[:len(packed) // 2], 1 << 20)  # truncated


@pytest.mark.parametrize("name", COMPRESSORS)
def test_compressor_stops_at_max_size(name: str) -> None:
    """Exactly *max_size* bytes come out; one more is `BodyTooLarge`, which
    names the limit."""
    c = PM.registry("compressors")[name]
    data = bytes(range(256)) * 4096  # 1 MiB
    packed = c.compress(data)
    assert c.decompress(packed, len(data)) == data
    with pytest.raises(BodyTooLarge, match=f"{len(data) - 1:,} bytes"):
        c.decompress(packed, len(data) - 1)


@pytest.mark.parametrize("name", COMPRESSORS)
def test_compressor_defuses_a_bomb_while_streaming(name: str) -> None:
    """64 MiB of zeros, compressed to a few KiB, against an 8 MiB limit: the
    decompressor gives up having held at most the limit plus a chunk or two
    (1 MiB each here), not twice the limit and not the bomb (Python's
    allocations traced)."""
    c = PM.registry("compressors")[name]
    bomb = c.compress(bytes(64 << 20))
    assert len(bomb) < 128 << 10
    tracemalloc.start()
    try:
        with pytest.raises(BodyTooLarge):
            c.decompress(bomb, 8 << 20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < (8 + 3) << 20, f"{name} held {peak:,} bytes to refuse a 64 MiB bomb"


def test_celery_mime_types() -> None:
    types = {n: c.content_type for n, c in PM.registry("compressors").items()}
    assert types["zlib"] == "application/x-gzip" and types["bzip2"] == "application/x-bz2"
    assert types["zstd"] == "application/zstd"
    ctypes = {n: s.content_type for n, s in PM.registry("serializers").items()}
    assert ctypes["json"] == "application/json"
    assert ctypes["msgpack"] == "application/x-msgpack"
    assert ctypes["pickle"] == "application/x-python-serialize"
