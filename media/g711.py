"""G.711 µ-law and A-law (ITU-T G.711, 11/1988) through numpy lookup tables.

Decoding is a 256-entry table per law; encoding is a 65,536-entry table indexed by the
16-bit linear sample, so a whole batch of frames (any shape) is one `np.take`. The tables
are built once at import by the algorithm of the ITU-T reference implementation (G.191
Software Tool Library, g711.c): µ-law works on the 14 most significant bits with a bias of
33, A-law on the 13 most significant bits; negative inputs are one's-complemented, so the
decision levels are symmetric and -1 encodes as "negative zero" (G.711 Tables 1 and 2).

A-law <-> µ-law transcoding goes straight code to code through 256-entry tables.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = [
    "ALAW_TO_ULAW",
    "ALAW_DECODE",
    "ALAW_ENCODE",
    "PCMA",
    "PCMU",
    "ULAW_TO_ALAW",
    "ULAW_DECODE",
    "ULAW_ENCODE",
    "alaw_decode",
    "alaw_encode",
    "alaw_to_ulaw",
    "decode",
    "encode",
    "ulaw_decode",
    "ulaw_encode",
    "ulaw_to_alaw",
]

# RFC 3551 §6 static payload types.
PCMU = 0
PCMA = 8

Int16Array = npt.NDArray[np.int16]
UInt8Array = npt.NDArray[np.uint8]


def _ulaw_encode_all() -> UInt8Array:
    """µ-law code of every int16 value, G.711 §3.2 / Table 2a."""
    x = np.arange(-32768, 32768, dtype=np.int32)
    # One's complement for negatives, keep 14 MSBs, add the bias 33 (0x21).
    mag = np.where(x < 0, (~x) >> 2, x >> 2) + 33
    mag = np.minimum(mag, 0x1FFF)
    # Segment = position of the highest set bit above bit 5 (8 segments).
    segment = np.ones_like(mag)
    i = mag >> 6
    while np.any(i):
        segment += i > 0
        i >>= 1
    high = 8 - segment
    low = 0xF - ((mag >> segment) & 0xF)
    code = (high << 4) | low
    code = np.where(x >= 0, code | 0x80, code)
    return code.astype(np.uint8)


def _ulaw_decode_all() -> Int16Array:
    code = np.arange(256, dtype=np.int32)
    inv = ~code
    exponent = (inv >> 4) & 7
    mantissa = inv & 0x0F
    step = 4 << (exponent + 1)
    mag = (0x80 << exponent) + step * mantissa + step // 2 - 4 * 33
    return np.where(code < 0x80, -mag, mag).astype(np.int16)


def _alaw_encode_all() -> UInt8Array:
    """A-law code of every int16 value, G.711 §3.1 / Table 1a; even bits inverted (0x55)."""
    x = np.arange(-32768, 32768, dtype=np.int32)
    ix = np.where(x < 0, (~x) >> 4, x >> 4)  # 12-bit magnitude of the 13 MSBs
    exponent = np.zeros_like(ix)
    m = ix.copy()
    big = m > 15
    exponent[big] = 1
    while True:
        shift = m > 31
        if not np.any(shift):
            break
        m = np.where(shift, m >> 1, m)
        exponent += shift
    code = np.where(big, (m - 16) + (exponent << 4), ix)
    code = np.where(x >= 0, code | 0x80, code)
    return (code ^ 0x55).astype(np.uint8)


def _alaw_decode_all() -> Int16Array:
    code = np.arange(256, dtype=np.int32)
    ix = (code ^ 0x55) & 0x7F
    exponent = ix >> 4
    mantissa = ix & 0x0F
    mantissa = np.where(exponent > 0, mantissa + 16, mantissa)
    mag = (mantissa << 4) + 8
    mag = np.where(exponent > 1, mag << np.maximum(exponent - 1, 0), mag)
    return np.where(code > 127, mag, -mag).astype(np.int16)


def _by_uint16(table: UInt8Array) -> UInt8Array:
    """Reorder a table built over -32768..32767 so that it is indexed by `x.view(uint16)`."""
    return np.ascontiguousarray(np.roll(table, -32768))


ULAW_ENCODE: UInt8Array = _by_uint16(_ulaw_encode_all())
ALAW_ENCODE: UInt8Array = _by_uint16(_alaw_encode_all())
ULAW_DECODE: Int16Array = _ulaw_decode_all()
ALAW_DECODE: Int16Array = _alaw_decode_all()


def _transcode(src: Int16Array, dst: Int16Array, scale: float) -> UInt8Array:
    """Code-to-code table: each source magnitude, scaled, to the nearest target
    reconstruction value (ties to the larger), sign kept.

    ITU-T G.711 Tables 3 and 4 are not "decode then re-encode" in 16-bit units: the two
    laws have slightly different overload points, so the µ-law scale sits ~0.6% above the
    A-law one. Any factor in [1.0043, 1.0081] reproduces both tables exactly; the tests
    check every entry against the standard's tables.
    """
    positive = np.arange(128, 256)
    recon = dst[positive].astype(np.float64)
    value = np.abs(src.astype(np.float64)) * scale
    distance = np.abs(value[:, None] - recon[None, :]) - 1e-9 * recon[None, :]
    code = positive[np.argmin(distance, axis=1)]
    # Codes 0x00-0x7F are negative in both laws (the sign bit survives A-law's 0x55 mask).
    return np.where(np.arange(256) < 128, code & 0x7F, code).astype(np.uint8)


_ULAW_SCALE = 1.006  # µ-law 16-bit units -> A-law 16-bit units, see _transcode
ALAW_TO_ULAW: UInt8Array = _transcode(ALAW_DECODE, ULAW_DECODE, 1.0 / _ULAW_SCALE)
ULAW_TO_ALAW: UInt8Array = _transcode(ULAW_DECODE, ALAW_DECODE, _ULAW_SCALE)
# Both encoders stacked: row 0 µ-law, row 1 A-law, for batches mixing the two laws.
ENCODE_BY_LAW: UInt8Array = np.stack([ULAW_ENCODE, ALAW_ENCODE])
DECODE_BY_LAW: Int16Array = np.stack([ULAW_DECODE, ALAW_DECODE])
for _t in (ULAW_ENCODE, ALAW_ENCODE, ULAW_DECODE, ALAW_DECODE, ALAW_TO_ULAW, ULAW_TO_ALAW,
           ENCODE_BY_LAW, DECODE_BY_LAW):
    _t.flags.writeable = False


def ulaw_encode(samples: Int16Array) -> UInt8Array:
    """int16 samples (any shape) to µ-law codes of the same shape."""
    return ULAW_ENCODE[np.asarray(samples, dtype=np.int16).view(np.uint16)]


def alaw_encode(samples: Int16Array) -> UInt8Array:
    return ALAW_ENCODE[np.asarray(samples, dtype=np.int16).view(np.uint16)]


def ulaw_decode(codes: bytes | UInt8Array) -> Int16Array:
    """µ-law codes (a payload or an array) to int16 samples."""
    return ULAW_DECODE[_codes(codes)]


def alaw_decode(codes: bytes | UInt8Array) -> Int16Array:
    return ALAW_DECODE[_codes(codes)]


def ulaw_to_alaw(codes: bytes | UInt8Array) -> UInt8Array:
    return ULAW_TO_ALAW[_codes(codes)]


def alaw_to_ulaw(codes: bytes | UInt8Array) -> UInt8Array:
    return ALAW_TO_ULAW[_codes(codes)]


def encode(samples: Int16Array, payload_type: int) -> bytes:
    """One payload for PCMU (0) or PCMA (8)."""
    table = ULAW_ENCODE if payload_type == PCMU else ALAW_ENCODE
    return table[np.asarray(samples, dtype=np.int16).view(np.uint16)].tobytes()


def decode(payload: bytes, payload_type: int) -> Int16Array:
    table = ULAW_DECODE if payload_type == PCMU else ALAW_DECODE
    return table[_codes(payload)]


def _codes(codes: bytes | UInt8Array) -> UInt8Array:
    if isinstance(codes, bytes | bytearray | memoryview):
        return np.frombuffer(codes, dtype=np.uint8)
    return np.asarray(codes, dtype=np.uint8)
