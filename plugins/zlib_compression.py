"""``zlib`` compression, carried as ``application/x-gzip`` like Celery."""
from __future__ import annotations

import zlib

from corekit.hookspecs import hookimpl
from corekit.serialization import BodyTooLarge, Compressor


class ZlibCompressor(Compressor):
    name = "zlib"
    content_type = "application/x-gzip"

    def compress(self, data: bytes) -> bytes:
        return zlib.compress(data)

    def decompress(self, data: bytes, max_size: int) -> bytes:
        inflater = zlib.decompressobj()
        out = inflater.decompress(data, max_size + 1)
        if len(out) > max_size:
            raise BodyTooLarge("the decompressed body", max_size)
        if not inflater.eof:
            raise zlib.error("incomplete or truncated stream")
        return out


@hookimpl
def corekit_register_compressors() -> list[Compressor]:
    return [ZlibCompressor()]
