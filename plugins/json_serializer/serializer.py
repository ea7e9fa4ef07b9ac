"""The ``json`` serializer (the default), as ``application/json``: kombu's
JSON.  ``datetime``, ``date``, ``time``, ``Decimal``, ``UUID`` and bytes
travel as kombu writes them, ``{"__type__": marker, "__value__": value}``,
and come back as the same types, so a Celery client and a corekit worker
read each other's values alike.  Sets and frozensets go as lists.

The implementation, imported when the serializers are asked for: the
plugin's module (``__init__``) is imported at every start-up and stays
light (no json, uuid or decimal)."""
from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any, Callable

from corekit.serialization import Serializer

MARKER = b'"__type__"'


def _marked(kind: str, value: Any) -> dict[str, Any]:
    return {"__type__": kind, "__value__": value}


def _encode_bytes(value: bytes) -> dict[str, Any]:
    try:
        return _marked("bytes", value.decode("utf-8"))
    except UnicodeDecodeError:
        return _marked("base64", base64.b64encode(value).decode("ascii"))


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"a JSON type marker's value must be a string, not {type(value).__name__}")
    return value


def _decode_uuid(value: Any) -> uuid.UUID:
    if not isinstance(value, dict) or value.keys() != {"hex"}:
        raise ValueError("a uuid marker's value must be {\"hex\": ...}")
    return uuid.UUID(hex=_text(value["hex"]))


def _decode_decimal(value: Any) -> Decimal:
    try:
        return Decimal(_text(value))
    except InvalidOperation:
        raise ValueError(f"not a decimal: {value[:40]!r}") from None


def _decode_base64(value: Any) -> bytes:
    try:
        return base64.b64decode(_text(value).encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise ValueError("not base64") from None


#: kombu's markers, and how each value comes back (kombu.utils.json).
DECODERS: dict[str, Callable[[Any], Any]] = {
    "datetime": lambda v: datetime.fromisoformat(_text(v)),
    "date": lambda v: datetime.fromisoformat(_text(v)).date(),
    "time": lambda v: time.fromisoformat(_text(v)),
    "decimal": _decode_decimal,
    "uuid": _decode_uuid,
    "bytes": lambda v: _text(v).encode("utf-8"),
    "base64": _decode_base64,
}


def _object_hook(obj: dict[str, Any]) -> Any:
    if len(obj) != 2 or "__type__" not in obj or "__value__" not in obj:
        return obj
    decode = DECODERS.get(obj["__type__"]) if isinstance(obj["__type__"], str) else None
    if decode is None:
        raise ValueError(f"unsupported JSON type marker {str(obj['__type__'])[:40]!r}")
    return decode(obj["__value__"])


class JSONSerializer(Serializer):
    name = "json"
    content_type = "application/json"
    content_encoding = "utf-8"

    def __init__(self) -> None:
        self._encoder = json.JSONEncoder(separators=(",", ":"), default=self._default)
        self._decoder = json.JSONDecoder()
        self._typed_decoder = json.JSONDecoder(object_hook=_object_hook)

    @staticmethod
    def _default(obj: Any) -> Any:
        # datetime before date: a datetime is a date too
        if isinstance(obj, datetime):
            return _marked("datetime", obj.isoformat())
        if isinstance(obj, date):
            return _marked("date", obj.isoformat())
        if isinstance(obj, time):
            return _marked("time", obj.isoformat())
        if isinstance(obj, Decimal):
            return _marked("decimal", str(obj))
        if isinstance(obj, uuid.UUID):
            return _marked("uuid", {"hex": obj.hex})
        if isinstance(obj, (bytes, bytearray, memoryview)):
            return _encode_bytes(bytes(obj))
        if isinstance(obj, (set, frozenset)):
            return list(obj)
        raise TypeError(f"Object of type {type(obj).__qualname__} is not JSON serializable")

    def dumps(self, obj: Any) -> bytes:
        return self._encoder.encode(obj).encode()

    def loads(self, data: bytes) -> Any:
        if type(data) is not str:
            if type(data) is not bytes:
                data = bytes(data)
            # the object hook costs a call per object: only a body that may
            # hold a marker (the key written out, or escaped) pays for it
            typed = MARKER in data or b"\\u" in data
            text = data.decode("utf-8")
        else:
            typed = '"__type__"' in data or "\\u" in data
            text = data
        return (self._typed_decoder if typed else self._decoder).decode(text)
