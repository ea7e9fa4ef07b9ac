"""The ``msgpack`` serializer, as ``application/x-msgpack``."""
from __future__ import annotations

from typing import Any

import msgpack

from corekit.hookspecs import hookimpl
from corekit.serialization import Serializer


class MsgpackSerializer(Serializer):
    name = "msgpack"
    content_type = "application/x-msgpack"
    content_encoding = "binary"

    def dumps(self, obj: Any) -> bytes:
        return msgpack.packb(obj, use_bin_type=True)

    def loads(self, data: bytes) -> Any:
        return msgpack.unpackb(data, raw=False, strict_map_key=False)


@hookimpl
def corekit_register_serializers() -> list[Serializer]:
    return [MsgpackSerializer()]
