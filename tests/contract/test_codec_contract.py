"""Serializer and compressor contracts, on every installed one."""
from __future__ import annotations

from typing import Any

import pytest

from corekit.messages import task_body
from corekit.serialization import Compressor, Serializer
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
    assert len(packed) < len(data) and c.decompress(packed) == data
    assert c.decompress(c.compress(b"")) == b""
    with pytest.raises(Exception):
        c.decompress(b"definitely not compressed")


def test_celery_mime_types() -> None:
    types = {n: c.content_type for n, c in PM.registry("compressors").items()}
    assert types["zlib"] == "application/x-gzip" and types["bzip2"] == "application/x-bz2"
    assert types["zstd"] == "application/zstd"
    ctypes = {n: s.content_type for n, s in PM.registry("serializers").items()}
    assert ctypes["json"] == "application/json"
    assert ctypes["msgpack"] == "application/x-msgpack"
    assert ctypes["pickle"] == "application/x-python-serialize"
