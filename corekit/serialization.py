"""Serializer and compressor contracts, and the codec table the app builds
from the plugins once."""
from __future__ import annotations

from typing import Any, Iterable

from corekit.exceptions import ContentDisallowed, DecodeError, PluginNotFound

#: The largest body `Codecs.decode` inflates when not told otherwise; the
#: worker passes its ``worker_max_message_size`` setting (the same by default).
DEFAULT_MAX_SIZE = 16 * 1024 * 1024


class BodyTooLarge(DecodeError):
    """A message body, or what it decompresses to, is larger than allowed."""

    def __init__(self, what: str, max_size: int) -> None:
        super().__init__(f"{what} is over the limit of {max_size:,} bytes "
                         f"(worker_max_message_size)")
        self.max_size = max_size


class Serializer:
    """Turns Python values into bytes and back.

    ``name`` is what users write (``serializer="json"``), ``content_type`` is
    the MIME type carried in the message's ``content_type`` property, and
    ``content_encoding`` is ``"utf-8"`` for text formats and ``"binary"``
    otherwise.  ``dumps`` must accept the protocol v2 body (a 3-tuple of
    lists, dicts, strings, numbers, booleans and None) and ``loads(dumps(x))``
    must give it back with tuples possibly turned into lists.  ``loads`` raises
    any exception on bad input; the caller turns it into `DecodeError`.
    """

    name: str = ""
    content_type: str = ""
    content_encoding: str = "utf-8"

    def dumps(self, obj: Any) -> bytes:
        raise NotImplementedError

    def loads(self, data: bytes) -> Any:
        raise NotImplementedError


class Compressor:
    """Compresses a serialized body.

    ``name`` is what users write (``compression="zlib"``); ``content_type``
    is the MIME type put in the message's ``compression`` header
    (``application/x-gzip`` for zlib, as Celery does).
    """

    name: str = ""
    content_type: str = ""

    def compress(self, data: bytes) -> bytes:
        raise NotImplementedError

    def decompress(self, data: bytes, max_size: int) -> bytes:
        """*data* decompressed, at most *max_size* bytes of it.

        Decompress while streaming, asking for at most ``max_size + 1``
        bytes of output, and raise `BodyTooLarge` (``BodyTooLarge("the
        decompressed body", max_size)``) as soon as there is more: a
        small bomb must never make the worker hold more than the limit plus
        a chunk.  Anything else wrong with *data* (not this format,
        truncated) raises any other exception."""
        raise NotImplementedError


class Codecs:
    """Serializers and compressors by name and by MIME type."""

    def __init__(self, serializers: Iterable[Serializer], compressors: Iterable[Compressor]) -> None:
        self.serializers = {s.name: s for s in serializers}
        self.by_content_type = {s.content_type: s for s in self.serializers.values()}
        self.compressors = {c.name: c for c in compressors}
        self.compressor_by_type = {c.content_type: c for c in self.compressors.values()}
        for c in self.compressors.values():  # accept the short name on the wire too
            self.compressor_by_type.setdefault(c.name, c)

    def serializer(self, name: str) -> Serializer:
        try:
            return self.serializers[name]
        except KeyError:
            raise PluginNotFound(
                f"no serializer called {name!r} is installed "
                f"(installed: {', '.join(sorted(self.serializers))})") from None

    def compressor(self, name: str) -> Compressor:
        try:
            return self.compressors[name]
        except KeyError:
            raise PluginNotFound(
                f"no compression called {name!r} is installed "
                f"(installed: {', '.join(sorted(self.compressors))})") from None

    def accepted_types(self, accept: Iterable[str]) -> frozenset[str]:
        """MIME types for an ``accept_content`` list of names or MIME types."""
        types = set()
        for item in accept:
            s = self.serializers.get(item)
            types.add(s.content_type if s else item)
        return frozenset(types)

    def encode(self, obj: Any, serializer: str, compression: str | None = None
               ) -> tuple[bytes, str, str, str | None]:
        """Return ``(body, content_type, content_encoding, compression_type)``."""
        s = self.serializer(serializer)
        body = s.dumps(obj)
        ctype = None
        if compression:
            c = self.compressor(compression)
            body, ctype = c.compress(body), c.content_type
        return body, s.content_type, s.content_encoding, ctype

    def decode(self, body: bytes, content_type: str, compression: str | None = None,
               accept: frozenset[str] | None = None, max_size: int | None = None) -> Any:
        """Decode a body, refusing content types outside *accept*, and a
        body (as it came or decompressed) over *max_size* bytes; without
        *max_size*, what a body decompresses to is capped at
        `DEFAULT_MAX_SIZE`."""
        if not isinstance(body, (bytes, bytearray, memoryview, str)):
            raise DecodeError(f"the body is not bytes: {type(body).__name__}")
        if max_size is not None and len(body) > max_size:
            raise BodyTooLarge(f"the body ({len(body):,} bytes)", max_size)
        if accept is not None and content_type not in accept:
            raise ContentDisallowed(
                f"refusing to deserialize content of type {content_type!r}: "
                f"accept_content allows {sorted(accept)}")
        s = self.by_content_type.get(content_type)
        if s is None:
            raise DecodeError(f"no serializer for content type {content_type!r}")
        if compression:
            c = self.compressor_by_type.get(compression)
            if c is None:
                raise DecodeError(f"no decompressor for {compression!r}")
            try:
                body = c.decompress(body, DEFAULT_MAX_SIZE if max_size is None else max_size)
            except BodyTooLarge:
                raise
            except Exception as exc:
                raise DecodeError(f"cannot decompress body ({compression}): {exc}") from exc
        try:
            return s.loads(body)
        except Exception as exc:
            raise DecodeError(f"cannot decode {content_type} body: {exc}") from exc
