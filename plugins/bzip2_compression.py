"""``bzip2`` compression, carried as ``application/x-bz2``."""
from __future__ import annotations

import bz2

from corekit.hookspecs import hookimpl
from corekit.serialization import BodyTooLarge, Compressor

CHUNK = 1024 * 1024


class Bzip2Compressor(Compressor):
    name = "bzip2"
    content_type = "application/x-bz2"

    def compress(self, data: bytes) -> bytes:
        return bz2.compress(data)

    def decompress(self, data: bytes, max_size: int) -> bytes:
        """Every stream in *data*, as `bz2.decompress` reads them, in chunks
        of `CHUNK`: a bomb is refused holding at most the limit plus a chunk."""
        chunks: list[bytes] = []
        size = 0
        stream = bz2.BZ2Decompressor()
        while True:
            chunk = stream.decompress(data, CHUNK)
            data = b""
            size += len(chunk)
            if size > max_size:
                raise BodyTooLarge("the decompressed body", max_size)
            chunks.append(chunk)
            if stream.eof:
                data = stream.unused_data
                if not data:
                    return b"".join(chunks)
                stream = bz2.BZ2Decompressor()
            elif stream.needs_input:
                raise ValueError("compressed data ended before the end-of-stream marker")


@hookimpl
def corekit_register_compressors() -> list[Compressor]:
    return [Bzip2Compressor()]
