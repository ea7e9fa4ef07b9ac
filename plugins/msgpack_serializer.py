"""The ``msgpack`` serializer, as ``application/x-msgpack``."""
from __future__ import annotations

from typing import Any

from corekit.hookspecs import hookimpl
from corekit.serialization import Serializer


class MsgpackSerializer(Serializer):
    name = "msgpack"
    content_type = "application/x-msgpack"
    content_encoding = "binary"

    def __init__(self) -> None:
        import msgpack  # here, not at the top: the plugin module stays light

        self._packb, self._unpackb = msgpack.packb, msgpack.unpackb

    def dumps(self, obj: Any) -> bytes:
        return self._packb(obj, use_bin_type=True)

    def loads(self, data: bytes) -> Any:
        return self._unpackb(data, raw=False, strict_map_key=False)


@hookimpl
def corekit_register_serializers() -> list[Serializer]:
    return [MsgpackSerializer()]
