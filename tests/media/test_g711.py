from __future__ import annotations

import numpy as np
import pytest

from media import g711
from tests.media.g711_tables import ALAW_TO_ULAW, ULAW_TO_ALAW


def enc(table: np.ndarray, value: int) -> int:
    return int(table[np.array([value], dtype=np.int16).view(np.uint16)][0])


# G.711 Table 2a (µ-law), decoder outputs in 14-bit units, x4 at 16 bits: segment 1 ends
# at 30, segment 2 starts at 33, segment 4 ends at 471, segment 5 starts at 495, the
# top is 8031. Table 1a (A-law), 13-bit units x8: 1, 3, segment 2 starts at 33, segment 3
# ends at 126, segment 8 starts at 2112, the top is 4032.
@pytest.mark.parametrize(
    ("code", "value"),
    [(0xFF, 0), (0x7F, 0), (0x80, 32124), (0x00, -32124), (0xFE, 8), (0x7E, -8),
     (0xF0, 4 * 30), (0xEF, 4 * 33), (0xC0, 4 * 471), (0xBF, 4 * 495)],
)
def test_ulaw_decoder_reference_values(code: int, value: int) -> None:
    assert int(g711.ULAW_DECODE[code]) == value


@pytest.mark.parametrize(
    ("code", "value"),
    [(0xD5, 8 * 1), (0x55, -8), (0xAA, 8 * 4032), (0x2A, -8 * 4032), (0xD4, 8 * 3),
     (0xC5, 8 * 33), (0xFA, 8 * 126), (0xA5, 8 * 2112)],
)
def test_alaw_decoder_reference_values(code: int, value: int) -> None:
    assert int(g711.ALAW_DECODE[code]) == value


@pytest.mark.parametrize(
    ("value", "code"),
    [(0, 0xFF), (-1, 0x7F), (1, 0xFF), (32767, 0x80), (-32768, 0x00), (8, 0xFE), (-9, 0x7E),
     (128, 0xEF), (-128, 0x6F)],
)
def test_ulaw_encoder_reference_values(value: int, code: int) -> None:
    assert enc(g711.ULAW_ENCODE, value) == code


@pytest.mark.parametrize(
    ("value", "code"),
    [(0, 0xD5), (-1, 0x55), (15, 0xD5), (16, 0xD4), (32767, 0xAA), (-32768, 0x2A),
     (4095, 0x9A), (4096, 0x85)]  # 13-bit 511 | 512: segment 5 | 6,
)
def test_alaw_encoder_reference_values(value: int, code: int) -> None:
    assert enc(g711.ALAW_ENCODE, value) == code


def test_decode_then_encode_is_identity() -> None:
    codes = np.arange(256, dtype=np.uint8)
    assert (g711.alaw_encode(g711.alaw_decode(codes)) == codes).all()
    back = g711.ulaw_encode(g711.ulaw_decode(codes))
    # µ-law has two zeros: "negative zero" 0x7F decodes to 0, which encodes as 0xFF.
    assert (back[codes != 0x7F] == codes[codes != 0x7F]).all() and back[0x7F] == 0xFF


def test_decoder_is_odd_symmetric_and_monotonic() -> None:
    u = g711.ULAW_DECODE.astype(int)
    a = g711.ALAW_DECODE.astype(int)
    assert (u[0x80:] == -u[:0x80]).all()
    assert (a[0x80:] == -a[:0x80]).all()
    # Positive µ-law codes 0xFF..0x80 grow; A-law after undoing the 0x55 mask.
    assert (np.diff(u[0x80:][::-1]) > 0).all()
    mags = a[np.arange(128) ^ 0x55 | 0x80]
    assert (np.diff(mags) > 0).all()


def test_quantisation_error_is_within_half_a_step() -> None:
    x = np.arange(-32768, 32768, dtype=np.int32)
    for encode, decode, lsb in ((g711.ulaw_encode, g711.ulaw_decode, 4),
                                (g711.alaw_encode, g711.alaw_decode, 8)):
        y = decode(encode(x.astype(np.int16))).astype(np.int32)
        err = np.abs(y - x)
        small = np.abs(x) < 900
        assert err[small].max() <= 8 * lsb  # fine steps near zero
        assert (err <= np.maximum(np.abs(x) // 16, 8 * lsb) + 4 * 64 + 256).all()


def test_transcoding_tables_match_g711_tables_3_and_4() -> None:
    assert g711.ULAW_TO_ALAW.tolist() == ULAW_TO_ALAW
    assert g711.ALAW_TO_ULAW.tolist() == ALAW_TO_ULAW
    payload = bytes(range(256))
    assert g711.ulaw_to_alaw(payload).tobytes() == bytes(ULAW_TO_ALAW)
    assert g711.alaw_to_ulaw(payload).tobytes() == bytes(ALAW_TO_ULAW)


def test_payload_round_trip_and_batch_shape() -> None:
    rng = np.random.default_rng(1)
    pcm = rng.integers(-20000, 20000, size=(7, 160)).astype(np.int16)
    for pt in (g711.PCMU, g711.PCMA):
        payload = g711.encode(pcm[0], pt)
        assert len(payload) == 160
        again = g711.decode(payload, pt)
        assert np.abs(again.astype(int) - pcm[0]).max() < 1100
    assert g711.ulaw_encode(pcm).shape == (7, 160)
    assert g711.ENCODE_BY_LAW[np.array([[0], [1]]), pcm[:2].view(np.uint16)].shape == (2, 160)


def test_tables_are_read_only() -> None:
    with pytest.raises(ValueError):
        g711.ULAW_DECODE[0] = 1
