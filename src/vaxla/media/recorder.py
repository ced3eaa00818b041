"""Call recording to WAV (stereo: one party per channel, or mixed mono) and
MP3 export (lameenc).

:class:`WavRecorder` writes frames as they come (the WAV header is fixed
up on close, and is valid at every flush) — sans-IO apart from the file.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt

Pcm = npt.NDArray[np.int16]
RATE = 8000


class WavRecorder:
    def __init__(self, path: Path, mode: str = "stereo") -> None:
        if mode not in ("stereo", "mono"):
            raise ValueError("mode is stereo or mono")
        self.path = path
        self.mode = mode
        path.parent.mkdir(parents=True, exist_ok=True)
        self._wav = wave.open(str(path), "wb")  # noqa: SIM115 (open for the whole call)
        self._wav.setnchannels(2 if mode == "stereo" else 1)
        self._wav.setsampwidth(2)
        self._wav.setframerate(RATE)
        self.frames = 0
        self.closed = False

    def write(self, left: Pcm, right: Pcm) -> None:
        """One block of both parties (caller ``left``, callee ``right``)."""
        if self.closed:
            return
        n = min(len(left), len(right))
        if self.mode == "stereo":
            data = np.empty(2 * n, dtype="<i2")
            data[0::2] = left[:n]
            data[1::2] = right[:n]
        else:
            mixed = left[:n].astype(np.int32) + right[:n].astype(np.int32)
            data = np.clip(mixed, -32768, 32767).astype("<i2")
        self._wav.writeframesraw(data.tobytes())
        self.frames += n

    @property
    def duration(self) -> float:
        return self.frames / RATE

    def close(self) -> float:
        if not self.closed:
            self.closed = True
            self._wav.close()
        return self.duration


# LAME's encoder delay (samples) in front of the audio; decoders add 529 more.
LAME_DELAY = 576


def _crc16_arc(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def info_frame(first_header: bytes, frames: int, total_bytes: int, samples: int) -> bytes:
    """A silent MP3 frame carrying a Xing "Info" tag with a LAME extension.

    The tag's encoder delay and padding let decoders (ffmpeg, players with
    gapless support) drop the samples the encoder added, so the MP3 decodes
    to the recording's exact length. MPEG-2/2.5 layer III frames only (what
    8 kHz encodes to): 576 samples per frame, side info 9 (mono) or 17 bytes.
    """
    header = bytearray(first_header[:4])
    header[2] &= ~0x02  # no padding slot
    bitrate_index = header[2] >> 4
    rates = {1: 8, 2: 16, 3: 24, 4: 32, 5: 40, 6: 48, 7: 56, 8: 64, 9: 80, 10: 96}
    rate_index = (header[2] >> 2) & 3
    version = (header[1] >> 3) & 3  # 0: MPEG-2.5, 2: MPEG-2
    sample_rate = {0: (11025, 12000, 8000), 2: (22050, 24000, 16000)}[version][rate_index]
    size = 72 * rates[bitrate_index] * 1000 // sample_rate
    mono = header[3] >> 6 == 3
    frame = bytearray(size)
    frame[:4] = header
    pos = 4 + (9 if mono else 17)
    padding = frames * 576 - LAME_DELAY - samples
    tag = b"Info" + (3).to_bytes(4, "big") + frames.to_bytes(4, "big")
    tag += total_bytes.to_bytes(4, "big")
    lame = bytearray(b"LAME3.100")  # encoder string, as LAME writes it
    lame += bytes([0, 0]) + bytes(4 + 2 + 2) + bytes([0, rates[bitrate_index]])
    lame += ((LAME_DELAY << 12) | max(0, min(padding, 4095))).to_bytes(3, "big")
    lame += bytes(1 + 1 + 2) + (0).to_bytes(4, "big") + bytes(2)
    frame[pos : pos + len(tag)] = tag
    pos += len(tag)
    frame[pos : pos + len(lame)] = lame
    pos += len(lame)
    frame[pos : pos + 2] = _crc16_arc(bytes(frame[:pos])).to_bytes(2, "big")
    return bytes(frame)


def export_mp3(wav_path: Path, mp3_path: Path | None = None, bitrate: int = 32) -> Path:
    """Encode a recording to MP3 with lameenc (same channels, 8 kHz), with a
    gapless Info/LAME tag so that it decodes to the recording's length."""
    import lameenc

    mp3_path = mp3_path or wav_path.with_suffix(".mp3")
    with wave.open(str(wav_path), "rb") as w:
        channels = w.getnchannels()
        rate = w.getframerate()
        samples = w.getnframes()
        pcm = w.readframes(samples)
    encoder = lameenc.Encoder()
    encoder.set_bit_rate(bitrate)
    encoder.set_in_sample_rate(rate)
    encoder.set_channels(channels)
    encoder.set_quality(2)
    data = bytes(encoder.encode(pcm)) + bytes(encoder.flush())
    if len(data) >= 4 and data[0] == 0xFF and (data[1] >> 3) & 3 in (0, 2):
        frame_size = len(info_frame(data[:4], 1, 0, 0))
        frames = len(data) // frame_size
        data = info_frame(data[:4], frames, len(data) + frame_size, samples) + data
    tmp = mp3_path.with_suffix(".mp3.tmp")
    tmp.write_bytes(data)
    tmp.replace(mp3_path)
    return mp3_path
