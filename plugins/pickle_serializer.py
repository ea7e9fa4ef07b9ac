"""The ``pickle`` serializer, as ``application/x-python-serialize``.

Unpickling runs code chosen by whoever wrote the message: workers refuse it
unless ``accept_content`` names it.
"""
from __future__ import annotations

from typing import Any

from corekit.hookspecs import hookimpl
from corekit.serialization import Serializer


class PickleSerializer(Serializer):
    name = "pickle"
    content_type = "application/x-python-serialize"
    content_encoding = "binary"

    def __init__(self) -> None:
        import pickle  # made by the hook: start-up, which imports this module, pays nothing

        self._pickle = pickle

    def dumps(self, obj: Any) -> bytes:
        return self._pickle.dumps(obj, protocol=self._pickle.HIGHEST_PROTOCOL)

    def loads(self, data: bytes) -> Any:
        return self._pickle.loads(data)  # noqa: S301 - only reached when accept_content allows it


@hookimpl
def corekit_register_serializers() -> list[Serializer]:
    return [PickleSerializer()]
