"""RFC 4733 telephone-events and SIP INFO dtmf-relay bodies."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vaxla.media.dtmf import (
    DigitEvent,
    DtmfParseError,
    DtmfRelay,
    ScheduledPacket,
    TelephoneEvent,
    TelephoneEventReceiver,
    TelephoneEventSender,
    digit_to_event,
    event_to_digit,
    parse_dtmf_relay,
)
from vaxla.media.rtp import RtpPacket

PT = 101


def test_payload_byte_exact() -> None:
    # event 5, E=1, R=0, volume 10, duration 800 (RFC 4733 §2.3 layout)
    assert bytes(TelephoneEvent(5, True, 10, 800)) == bytes.fromhex("058a0320")
    assert TelephoneEvent.parse(bytes.fromhex("058a0320")) == TelephoneEvent(5, True, 10, 800)
    assert TelephoneEvent.parse(bytes.fromhex("0b3f0000")) == TelephoneEvent(11, False, 63, 0)


def test_reserved_bit_ignored_on_parse() -> None:
    assert TelephoneEvent.parse(bytes.fromhex("01ca00a0")) == TelephoneEvent(1, True, 10, 160)


def test_multiple_events_in_one_payload() -> None:
    payload = bytes.fromhex("018a0320020a00a0")
    assert TelephoneEvent.parse_all(payload) == [
        TelephoneEvent(1, True, 10, 800),
        TelephoneEvent(2, False, 10, 160),
    ]


@pytest.mark.parametrize("payload", [b"", b"\x01\x02\x03", b"\x01\x02\x03\x04\x05"])
def test_bad_payload_lengths(payload: bytes) -> None:
    with pytest.raises(DtmfParseError):
        TelephoneEvent.parse(payload)


@given(st.integers(0, 255), st.booleans(), st.integers(0, 63), st.integers(0, 0xFFFF))
def test_payload_round_trip(event: int, end: bool, volume: int, duration: int) -> None:
    e = TelephoneEvent(event, end, volume, duration)
    assert TelephoneEvent.parse(bytes(e)) == e


def test_digit_codes() -> None:
    assert [digit_to_event(d) for d in "0123456789*#ABCD"] == list(range(16))
    assert digit_to_event("a") == 12
    assert event_to_digit(11) == "#" and event_to_digit(16) == "!"
    assert event_to_digit(17) is None
    with pytest.raises(ValueError):
        digit_to_event("E")


# -- sender ---------------------------------------------------------------------


def test_sender_packet_train() -> None:
    sender = TelephoneEventSender(PT, ssrc=0x1234, ptime_ms=20, volume=10)
    train = sender.packets_for_digit("5", timestamp=16000, sequence=65534, duration_ms=100)
    events = [TelephoneEvent.parse(s.packet.payload) for s in train]
    # updates at 20, 40, 60, 80 ms; the end at 100 ms, three times, 20 ms apart
    assert [s.offset for s in train] == pytest.approx([0.02, 0.04, 0.06, 0.08, 0.10, 0.12, 0.14])
    assert [e.duration for e in events] == [160, 320, 480, 640, 800, 800, 800]
    assert [e.end for e in events] == [False] * 4 + [True] * 3
    assert all(e.event == 5 and e.volume == 10 for e in events)
    assert [s.packet.marker for s in train] == [True] + [False] * 6
    assert {s.packet.timestamp for s in train} == {16000}
    assert [s.packet.sequence_number for s in train] == [65534, 65535, 0, 1, 2, 3, 4]
    assert sender.next_sequence == 5
    assert all(s.packet.payload_type == PT and s.packet.ssrc == 0x1234 for s in train)
    first = bytes(train[0].packet)
    assert first == bytes.fromhex("80e5fffe00003e8000001234050a00a0")


def test_sender_short_digit_and_30ms_ptime() -> None:
    sender = TelephoneEventSender(PT, 1, ptime_ms=30)
    train = sender.packets_for_digit("#", timestamp=0, sequence=0, duration_ms=20)
    assert [s.packet.marker for s in train] == [True, False, False]
    assert [TelephoneEvent.parse(s.packet.payload).duration for s in train] == [160] * 3
    assert [s.offset for s in train] == pytest.approx([0.02, 0.05, 0.08])


def test_sender_rejects_overlong_digit() -> None:
    with pytest.raises(ValueError):
        TelephoneEventSender(PT, 1).packets_for_digit("1", 0, 0, duration_ms=9000)


# -- receiver -------------------------------------------------------------------


def train_for(digits: str, gap_ms: int = 100, duration_ms: int = 100) -> list[ScheduledPacket]:
    """Packets for several digits on one stream, offsets from the first start."""
    sender = TelephoneEventSender(PT, 7)
    out: list[ScheduledPacket] = []
    seq = 1000
    for i, d in enumerate(digits):
        start = i * (duration_ms + gap_ms + 60) / 1000  # 60 ms: end repeats
        ts = 8 * int(start * 1000)
        for s in sender.packets_for_digit(d, ts, seq, duration_ms):
            out.append(ScheduledPacket(start + s.offset, s.packet))
        seq = sender.next_sequence
    return out


def run(receiver: TelephoneEventReceiver, train: list[ScheduledPacket]) -> list[DigitEvent]:
    events: list[DigitEvent] = []
    now = 0.0
    for s in train:
        now = max(now, s.offset)
        events += receiver.handle_timer(now)
        events += receiver.receive(s.packet, now)
    timer = receiver.get_timer()
    if timer is not None:
        events += receiver.handle_timer(timer)
    return events


def test_receiver_clean_stream() -> None:
    events = run(TelephoneEventReceiver(PT), train_for("123"))
    assert [(e.digit, e.duration) for e in events] == [("1", 800), ("2", 800), ("3", 800)]
    assert [e.start_timestamp for e in events] == [0, 2080, 4160]


def test_receiver_duplicates_every_packet() -> None:
    train = [s for s in train_for("90#") for _ in range(2)]
    events = run(TelephoneEventReceiver(PT), train)
    assert [(e.digit, e.duration) for e in events] == [("9", 800), ("0", 800), ("#", 800)]


def test_receiver_loses_first_and_two_end_packets() -> None:
    train = train_for("4")
    lossy = train[1:5] + train[6:]  # no marker packet, only the last end packet
    assert [(e.digit, e.duration) for e in run(TelephoneEventReceiver(PT), lossy)] == [("4", 800)]


def test_receiver_all_end_packets_lost_times_out() -> None:
    train = train_for("7")[:4]  # updates up to 640 samples, no end
    receiver = TelephoneEventReceiver(PT, end_timeout=0.3)
    events: list[DigitEvent] = []
    for s in train:
        events += receiver.receive(s.packet, s.offset)
    assert events == []
    timer = receiver.get_timer()
    assert timer is not None
    assert timer == pytest.approx(0.08 + 0.3)
    assert receiver.handle_timer(timer - 0.01) == []
    assert receiver.handle_timer(timer) == [DigitEvent("7", 0, 640)]
    assert receiver.get_timer() is None
    # a late end packet of the same digit is not reported again
    late = TelephoneEventSender(PT, 7).packets_for_digit("7", 0, 2000, 100)[-1].packet
    assert receiver.receive(late, timer + 0.1) == []


def test_receiver_next_digit_ends_the_previous_one() -> None:
    train = train_for("12")
    no_ends_for_1 = [s for s in train if not (s.packet.timestamp == 0 and s.offset > 0.09)]
    events = run(TelephoneEventReceiver(PT), no_ends_for_1)
    assert [(e.digit, e.duration) for e in events] == [("1", 640), ("2", 800)]


def test_receiver_reordering_and_loss_reports_each_digit_once() -> None:
    rng = random.Random(4733)
    digits = "0123456789*#ABCD"
    for _trial in range(30):
        train = train_for(digits, gap_ms=60)
        # drop 15% of packets, duplicate 10%, and jitter arrival by up to 30 ms
        noisy = []
        for s in train:
            if rng.random() < 0.15:
                continue
            copies = 2 if rng.random() < 0.1 else 1
            for _ in range(copies):
                noisy.append(ScheduledPacket(s.offset + rng.uniform(0, 0.03), s.packet))
        noisy.sort(key=lambda s: s.offset)
        events = run(TelephoneEventReceiver(PT), noisy)
        assert "".join(e.digit for e in events) == digits
        assert len({e.start_timestamp for e in events}) == len(digits)
        assert all(0 < e.duration <= 800 for e in events)


def test_receiver_ignores_other_payload_types_and_garbage() -> None:
    receiver = TelephoneEventReceiver(PT)
    assert receiver.receive(RtpPacket(8, 1, 0, 7, b"\xd5" * 160), 0.0) == []
    assert receiver.receive(RtpPacket(PT, 2, 0, 7, b"\x01"), 0.0) == []
    assert receiver.receive(RtpPacket(PT, 3, 0, 7, bytes(TelephoneEvent(40, True))), 0.0) == []
    assert receiver.get_timer() is None


def test_receiver_ignores_stale_event_after_newer_one() -> None:
    receiver = TelephoneEventReceiver(PT)
    assert receiver.receive(
        RtpPacket(PT, 10, 8000, 7, bytes(TelephoneEvent(2, True, 10, 800))), 1.0
    )
    assert (
        receiver.receive(RtpPacket(PT, 5, 4000, 7, bytes(TelephoneEvent(1, True, 10, 800))), 1.1)
        == []
    )


# -- SIP INFO -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"Signal=5\r\nDuration=160\r\n", DtmfRelay("5", 160)),
        (b"Signal=5\r\nDuration=160", DtmfRelay("5", 160)),
        (b"signal= *\nduration = 250\n", DtmfRelay("*", 250)),
        ("Signal=#\r\n", DtmfRelay("#", None)),
        (b"Signal=a\r\nDuration=100\r\n", DtmfRelay("A", 100)),
        (b"Signal=11\r\nDuration=100\r\n", DtmfRelay("#", 100)),
        (b"Signal=10\r\n", DtmfRelay("*", None)),
        (b"Signal=16\r\n", DtmfRelay("!", None)),
        (b"\r\nSignal=0\r\n\r\n", DtmfRelay("0", None)),
    ],
)
def test_parse_dtmf_relay(body: bytes | str, expected: DtmfRelay) -> None:
    assert parse_dtmf_relay(body) == expected


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"Duration=160\r\n",
        b"Signal=\r\n",
        b"Signal=E\r\n",
        b"Signal=99\r\n",
        b"Signal=5\r\nDuration=abc\r\n",
        b"garbage\r\n",
    ],
)
def test_parse_dtmf_relay_rejects(body: bytes) -> None:
    with pytest.raises(DtmfParseError):
        parse_dtmf_relay(body)


def test_dtmf_relay_serialises() -> None:
    assert bytes(DtmfRelay("5", 160)) == b"Signal=5\r\nDuration=160\r\n"
    assert bytes(DtmfRelay("#")) == b"Signal=#\r\n"
    assert parse_dtmf_relay(bytes(DtmfRelay("D", 90))) == DtmfRelay("D", 90)
