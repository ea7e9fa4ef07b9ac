"""``zlib`` compression, carried as ``application/x-gzip`` like Celery."""
from __future__ import annotations

import zlib

from corekit.hookspecs import hookimpl
from corekit.serialization import Compressor


class ZlibCompressor(Compressor):
    name = "zlib"
    content_type = "application/x-gzip"

    def compress(self, data: bytes) -> bytes:
        return zlib.compress(data)

    def decompress(self, data: bytes) -> bytes:
        return zlib.decompress(data)


@hookimpl
def corekit_register_compressors() -> list[Compressor]:
    return [ZlibCompressor()]
