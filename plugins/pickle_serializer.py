"""The ``pickle`` serializer, as ``application/x-python-serialize``.

Unpickling runs code chosen by whoever wrote the message: workers refuse it
unless ``accept_content`` names it.
"""
from __future__ import annotations

import pickle
from typing import Any

from corekit.hookspecs import hookimpl
from corekit.serialization import Serializer


class PickleSerializer(Serializer):
    name = "pickle"
    content_type = "application/x-python-serialize"
    content_encoding = "binary"

    def dumps(self, obj: Any) -> bytes:
        return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)

    def loads(self, data: bytes) -> Any:
        return pickle.loads(data)  # noqa: S301 - only reached when accept_content allows it


@hookimpl
def corekit_register_serializers() -> list[Serializer]:
    return [PickleSerializer()]
