"""``bzip2`` compression, carried as ``application/x-bz2``."""
from __future__ import annotations

import bz2

from corekit.hookspecs import hookimpl
from corekit.serialization import Compressor


class Bzip2Compressor(Compressor):
    name = "bzip2"
    content_type = "application/x-bz2"

    def compress(self, data: bytes) -> bytes:
        return bz2.compress(data)

    def decompress(self, data: bytes) -> bytes:
        return bz2.decompress(data)


@hookimpl
def corekit_register_compressors() -> list[Compressor]:
    return [Bzip2Compressor()]
