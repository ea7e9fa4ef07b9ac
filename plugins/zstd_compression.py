"""``zstd`` compression (zstandard), carried as ``application/zstd``."""
from __future__ import annotations

from corekit.hookspecs import hookimpl
from corekit.serialization import Compressor


class ZstdCompressor(Compressor):
    name = "zstd"
    content_type = "application/zstd"

    def compress(self, data: bytes) -> bytes:
        import zstandard

        return zstandard.ZstdCompressor().compress(data)

    def decompress(self, data: bytes) -> bytes:
        import zstandard

        # max_output_size: frames written without a content size still decode
        return zstandard.ZstdDecompressor().decompress(data, max_output_size=1 << 30)


@hookimpl
def corekit_register_compressors() -> list[Compressor]:
    return [ZstdCompressor()]
