"""G.711 A-law and µ-law against ITU-T G.711 tables 1a/2a and G.191 behaviour."""

from __future__ import annotations

import time

import numpy as np
import pytest

from vaxla.media.g711 import (
    ALAW_DECODE,
    ALAW_ENCODE,
    ALAW_SILENCE,
    ULAW_DECODE,
    ULAW_ENCODE,
    ULAW_SILENCE,
    G711Codec,
    alaw_decode,
    alaw_encode,
    ulaw_decode,
    ulaw_encode,
)

ALL_INT16 = np.arange(-32768, 32768, dtype=np.int64).astype(np.int16)


@pytest.mark.parametrize(
    ("code", "value"),
    [
        (0xD5, 8),  # smallest positive output (G.711 table 1a: 1 in 1/4096 units ×8)
        (0x55, -8),
        (0xD4, 24),
        (0xAA, 32256),  # A-law maximum 4032/4096
        (0x2A, -32256),
    ],
)
def test_alaw_known_decoder_outputs(code: int, value: int) -> None:
    assert ALAW_DECODE[code] == value


@pytest.mark.parametrize(
    ("code", "value"),
    [
        (0xFF, 0),  # +0
        (0x7F, 0),  # -0
        (0xFE, 8),  # 2/8192 ×4
        (0xEF, 132),  # 33/8192 ×4: first value of segment 1
        (0x80, 32124),  # µ-law maximum 8031/8192
        (0x00, -32124),
    ],
)
def test_ulaw_known_decoder_outputs(code: int, value: int) -> None:
    assert ULAW_DECODE[code] == value


def test_alaw_decoder_outputs_match_g711_table_1a() -> None:
    # magnitudes in 1/4096 units: segments 0 and 1 step 2 from 1; segment s >= 2
    # step 2**s from 2**(s+4) + 2**(s-1)
    expected = [2 * i + 1 for i in range(32)]
    for seg in range(2, 8):
        expected += [(1 << (seg + 4)) + (1 << (seg - 1)) + (i << seg) for i in range(16)]
    positive = sorted(int(v) // 8 for v in ALAW_DECODE if v > 0)
    assert positive == expected


def test_ulaw_decoder_outputs_match_g711_table_2a() -> None:
    # magnitudes in 1/8192 units: segment s starts at 33 * 2**s - 33, step 2**(s+1)
    expected = sorted(((33 << seg) - 33) + (m << (seg + 1)) for seg in range(8) for m in range(16))
    magnitudes = sorted(abs(int(v)) // 4 for v in ULAW_DECODE[:128])  # codes 0..127 negative
    assert magnitudes == expected


def test_silence_codes() -> None:
    assert ALAW_ENCODE[0] == ALAW_SILENCE == 0xD5
    assert ULAW_ENCODE[0] == ULAW_SILENCE == 0xFF
    assert alaw_encode(np.zeros(4, dtype=np.int16)) == b"\xd5" * 4
    assert G711Codec.PCMA.silence == b"\xd5"
    assert G711Codec.PCMU.silence == b"\xff"


def test_minus_one_encodes_as_negative_zero_like_g191() -> None:
    assert ulaw_encode(np.array([-1], dtype=np.int16)) == b"\x7f"
    assert alaw_encode(np.array([-1], dtype=np.int16)) == b"\x55"


def test_every_code_survives_decode_then_encode() -> None:
    codes = np.arange(256, dtype=np.uint8)
    assert alaw_encode(alaw_decode(codes.tobytes())) == codes.tobytes()
    again = np.frombuffer(ulaw_encode(ulaw_decode(codes.tobytes())), dtype=np.uint8)
    # only µ-law negative zero (0x7f) comes back as positive zero (0xff)
    assert list(np.nonzero(again != codes)[0]) == [0x7F]
    assert again[0x7F] == 0xFF


@pytest.mark.parametrize("law", ["alaw", "ulaw"])
def test_encoding_is_monotonic(law: str) -> None:
    decode = ALAW_DECODE if law == "alaw" else ULAW_DECODE
    encode = ALAW_ENCODE if law == "alaw" else ULAW_ENCODE
    values = decode[encode[ALL_INT16.view(np.uint16)]].astype(np.int64)
    assert np.all(np.diff(values) >= 0)


def test_round_trip_error_within_half_a_quantisation_step() -> None:
    x = ALL_INT16.astype(np.int64)
    mag = np.abs(x)
    a_err = np.abs(ALAW_DECODE[ALAW_ENCODE[ALL_INT16.view(np.uint16)]] - x)
    # A-law step: 16 below 512, then doubling per segment; error ≤ step/2 (+1 for the
    # 1's complement of negative input)
    a_step = np.where(
        mag < 512,
        16,
        16 << np.clip(np.floor(np.log2(np.maximum(mag, 1))) - 8, 0, 7).astype(np.int64),
    )
    assert np.all(a_err <= a_step // 2 + 1)
    in_range = mag <= 32124
    u_err = np.abs(ULAW_DECODE[ULAW_ENCODE[ALL_INT16.view(np.uint16)]] - x)
    u_step = 8 << np.clip(np.floor(np.log2(mag + 132)) - 7, 0, 7).astype(np.int64)
    assert np.all(u_err[in_range] <= u_step[in_range] // 2 + 1)
    assert np.all(u_err[~in_range] <= 32768 - 32124)  # beyond the overload point: clipped


@pytest.mark.parametrize("codec", [G711Codec.PCMA, G711Codec.PCMU])
def test_signal_to_quantisation_noise_of_a_sine(codec: G711Codec) -> None:
    t = np.arange(8000) / 8000
    for amplitude in (20000, 2000, 300):
        x = np.rint(amplitude * np.sin(2 * np.pi * 1020 * t)).astype(np.int16)
        y = codec.decode(codec.encode(x))
        noise = (y.astype(np.float64) - x) ** 2
        snr = 10 * np.log10(np.mean(x.astype(np.float64) ** 2) / np.mean(noise))
        assert snr > 30, (amplitude, snr)


def test_codec_objects() -> None:
    assert G711Codec.PCMA.payload_type == 8 and G711Codec.PCMU.payload_type == 0
    frame = (np.arange(160, dtype=np.int16) * 50).astype(np.int16)
    assert G711Codec.PCMA.encode(frame) == alaw_encode(frame)
    assert np.array_equal(
        G711Codec.PCMU.decode(ulaw_encode(frame)), ulaw_decode(ulaw_encode(frame))
    )
    assert "PCMA" in repr(G711Codec.PCMA)


def test_rejects_non_int16_input() -> None:
    with pytest.raises(TypeError):
        alaw_encode(np.zeros(4, dtype=np.float32))


def test_tables_are_read_only() -> None:
    with pytest.raises(ValueError):
        ALAW_DECODE[0] = 1


def test_speed() -> None:
    """Documents the µs per 160-sample frame (printed with pytest -s)."""
    frame = np.random.default_rng(0).integers(-20000, 20000, 160).astype(np.int16)
    payload = alaw_encode(frame)
    n = 2000
    t0 = time.perf_counter()
    for _ in range(n):
        alaw_encode(frame)
    t1 = time.perf_counter()
    for _ in range(n):
        alaw_decode(payload)
    t2 = time.perf_counter()
    enc_us, dec_us = (t1 - t0) / n * 1e6, (t2 - t1) / n * 1e6
    print(f"\nG.711 A-law per 160-sample frame: encode {enc_us:.2f} µs, decode {dec_us:.2f} µs")
    assert enc_us < 100 and dec_us < 100  # generous: shared CI machines
