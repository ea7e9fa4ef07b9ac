"""``zlib`` compression, carried as ``application/x-gzip`` like Celery."""
from __future__ import annotations

import zlib

from corekit.hookspecs import hookimpl
from corekit.serialization import BodyTooLarge, Compressor

CHUNK = 1024 * 1024


class ZlibCompressor(Compressor):
    name = "zlib"
    content_type = "application/x-gzip"

    def compress(self, data: bytes) -> bytes:
        return zlib.compress(data)

    def decompress(self, data: bytes, max_size: int) -> bytes:
        """In chunks of `CHUNK`: a bomb is refused holding at most the
        limit plus a chunk."""
        inflater = zlib.decompressobj()
        chunks: list[bytes] = []
        size = 0
        while not inflater.eof:
            chunk = inflater.decompress(data, CHUNK)
            data = inflater.unconsumed_tail
            if not chunk and not data and not inflater.eof:
                raise zlib.error("incomplete or truncated stream")
            size += len(chunk)
            if size > max_size:
                raise BodyTooLarge("the decompressed body", max_size)
            chunks.append(chunk)
        return b"".join(chunks)


@hookimpl
def corekit_register_compressors() -> list[Compressor]:
    return [ZlibCompressor()]
