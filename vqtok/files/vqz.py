"""The ``.vqz`` container: entropy-coded codes of one file, in chunks that decode independently.

Layout (integers little-endian)::

    magic            4 bytes  b"\\x89VQZ"
    format version   u16      FORMAT_VERSION; a newer one is refused
    header length    u32      N
    header           N bytes  compact JSON, UTF-8 (sorted keys, no spaces), deflated (raw, zlib's
                              ``wbits=-15``) with the preset dictionary :data:`HEADER_DICTIONARY`:
                              ``chunks`` (their number) and what :mod:`vqtok.codec.compression` writes
                              (model and prior hashes, modality, coder, code shapes, tile size, the code
                              file's meta, the codes' CRC32). Version 1 stored the JSON as it is.
    header CRC32     u32      of the N header bytes
    then, for each of the header's ``chunks``:
    payload length   u32      L
    payload CRC32    u32      of the L payload bytes
    payload          L bytes  the range coder's 32-bit words
    (nothing after the last chunk)

A file costs 14 bytes plus its header (about 70 bytes deflated; 230 as plain JSON) plus 8 bytes per chunk
beyond the coded bits: the dictionary holds the keys and usual values, so what is left to code is mostly
the hashes and numbers of the file.

Every check names what is wrong: not a .vqz, a newer version, a damaged header, a truncated file, a
damaged chunk (by number), bytes left over.
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from ..errors import VqtokError

MAGIC = b"\x89VQZ"
FORMAT_VERSION = 2
# Part of format version 2: what the header's deflate stream may refer back to. Never change it; a new one
# needs a new version. Strings that recur in headers, the likeliest last (the nearest cost the fewest bits).
HEADER_DICTIONARY = (
    b'"top":[1,"bottom":[1,"image_size":"image",".png",".jpg",".flac","uniform","unigram","n_q":"label":'
    b'{"chunks":1,"coder":"prior","codes_crc":,"label":,"meta":{"sample_rate":8000,"size":[],"modality":"audio",'
    b'"model":"","prior":"","shapes":{"codes":[1,2,},"suffix":".wav","window":256}0123456789abcdef'
)
SUFFIX = ".vqz"
_CHUNK_HEAD = struct.Struct("<II")  # payload length, payload CRC32


@dataclass
class Container:
    header: dict
    chunks: list[bytes]  # the entropy coder's output, one per chunk


def crc32(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def container_bytes(box: Container) -> bytes:
    text = json.dumps({**box.header, "chunks": len(box.chunks)}, sort_keys=True, separators=(",", ":")).encode()
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, HEADER_DICTIONARY)
    header = deflate.compress(text) + deflate.flush()
    parts = [MAGIC, struct.pack("<HI", FORMAT_VERSION, len(header)), header, struct.pack("<I", crc32(header))]
    for payload in box.chunks:
        parts += [_CHUNK_HEAD.pack(len(payload), crc32(payload)), payload]
    return b"".join(parts)


def parse_container(data: bytes, name: str) -> Container:
    """A container from its bytes; any damage is a :class:`VqtokError` naming ``name`` and the part."""
    if data[:4] != MAGIC:
        raise VqtokError(f"{name}: not a .vqz file (made by `vqtok compress`)")
    if len(data) < 10:
        raise VqtokError(f"{name}: truncated ({len(data)} bytes, shorter than a .vqz's fixed start)")
    version, size = struct.unpack_from("<HI", data, 4)
    if version > FORMAT_VERSION:
        raise VqtokError(
            f"{name}: .vqz format version {version}, newer than this vqtok reads "
            f"({FORMAT_VERSION}); upgrade vqtok to decompress it"
        )
    if version < 1:
        raise VqtokError(f"{name}: .vqz format version {version} does not exist; the file is damaged")
    at = 10 + size
    if len(data) < at + 4:
        raise VqtokError(f"{name}: truncated inside its header ({len(data)} bytes)")
    header_bytes = data[10:at]
    if crc32(header_bytes) != struct.unpack_from("<I", data, at)[0]:
        raise VqtokError(f"{name}: the header is damaged (CRC mismatch)")
    try:
        if version >= 2:
            inflate = zlib.decompressobj(-15, HEADER_DICTIONARY)
            header_bytes = inflate.decompress(header_bytes) + inflate.flush()
        header = json.loads(header_bytes)
        total = int(header["chunks"])
    except (ValueError, KeyError, TypeError, zlib.error):
        raise VqtokError(f"{name}: the header is not what `vqtok compress` writes") from None
    at += 4
    chunks = []
    for i in range(total):
        if len(data) < at + _CHUNK_HEAD.size:
            raise VqtokError(f"{name}: truncated: chunk {i + 1} of {total} is missing")
        length, payload_crc = _CHUNK_HEAD.unpack_from(data, at)
        at += _CHUNK_HEAD.size
        payload = data[at : at + length]
        if len(payload) < length:
            raise VqtokError(f"{name}: truncated: chunk {i + 1} of {total} is cut short")
        if crc32(payload) != payload_crc:
            raise VqtokError(f"{name}: chunk {i + 1} of {total} is damaged (CRC mismatch)")
        chunks.append(payload)
        at += length
    if at != len(data):
        raise VqtokError(f"{name}: {len(data) - at} unexpected byte(s) after the last chunk; the file is damaged")
    return Container(header, chunks)


def read_container(path: Path) -> Container:
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise VqtokError(f"cannot read {path}: {e.strerror or e}") from None
    return parse_container(data, str(path))
