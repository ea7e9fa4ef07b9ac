"""``zstd`` compression (zstandard), carried as ``application/zstd``."""
from __future__ import annotations

from corekit.hookspecs import hookimpl
from corekit.serialization import BodyTooLarge, Compressor

#: Frames that need a larger window (levels above 19, ``--long``) are
#: refused: the window is memory the decompressor holds beside the output.
MAX_WINDOW = 8 * 1024 * 1024
CHUNK = 1024 * 1024


class ZstdCompressor(Compressor):
    name = "zstd"
    content_type = "application/zstd"

    def compress(self, data: bytes) -> bytes:
        import zstandard

        return zstandard.ZstdCompressor().compress(data)

    def decompress(self, data: bytes, max_size: int) -> bytes:
        """Every frame in *data*, whatever size a frame header claims: the
        output is counted in chunks first (zstandard's stream reader does
        not report a truncated frame), then made frame by frame."""
        import zstandard

        dctx = zstandard.ZstdDecompressor(max_window_size=MAX_WINDOW)
        reader = dctx.stream_reader(data, read_across_frames=True)
        size = 0
        while chunk := reader.read(CHUNK):
            size += len(chunk)
            if size > max_size:
                raise BodyTooLarge("the decompressed body", max_size)
        out = bytearray()
        while True:
            frame = dctx.decompressobj()
            out += frame.decompress(data)
            if not frame.eof:
                raise ValueError("truncated zstd frame")
            data = frame.unused_data
            if not data:
                return bytes(out)


@hookimpl
def corekit_register_compressors() -> list[Compressor]:
    return [ZstdCompressor()]
