"""The ``json`` serializer (the default), as ``application/json``."""
from __future__ import annotations

import json
from typing import Any

from corekit.hookspecs import hookimpl
from corekit.serialization import Serializer


class JSONSerializer(Serializer):
    name = "json"
    content_type = "application/json"
    content_encoding = "utf-8"

    def __init__(self) -> None:
        self._encoder = json.JSONEncoder(separators=(",", ":"), default=self._default)
        self._decoder = json.JSONDecoder()

    @staticmethod
    def _default(obj: Any) -> Any:
        if hasattr(obj, "isoformat"):
            return obj.isoformat()
        if isinstance(obj, (set, frozenset)):
            return list(obj)
        if isinstance(obj, bytes):
            return obj.decode("utf-8", "replace")
        raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")

    def dumps(self, obj: Any) -> bytes:
        return self._encoder.encode(obj).encode()

    def loads(self, data: bytes) -> Any:
        if isinstance(data, (bytes, bytearray, memoryview)):
            data = bytes(data).decode("utf-8")
        return self._decoder.decode(data)


@hookimpl
def corekit_register_serializers() -> list[Serializer]:
    return [JSONSerializer()]
