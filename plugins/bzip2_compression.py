"""``bzip2`` compression, carried as ``application/x-bz2``."""
from __future__ import annotations

import bz2

from corekit.hookspecs import hookimpl
from corekit.serialization import BodyTooLarge, Compressor


class Bzip2Compressor(Compressor):
    name = "bzip2"
    content_type = "application/x-bz2"

    def compress(self, data: bytes) -> bytes:
        return bz2.compress(data)

    def decompress(self, data: bytes, max_size: int) -> bytes:
        """Every stream in *data*, as `bz2.decompress` reads them."""
        out = bytearray()
        while True:
            stream = bz2.BZ2Decompressor()
            out += stream.decompress(data, max_size + 1 - len(out))
            if len(out) > max_size:
                raise BodyTooLarge("the decompressed body", max_size)
            if not stream.eof:
                raise ValueError("compressed data ended before the end-of-stream marker")
            data = stream.unused_data
            if not data:
                return bytes(out)


@hookimpl
def corekit_register_compressors() -> list[Compressor]:
    return [Bzip2Compressor()]
