"""Parse an INVITE with SDP: Växla's parse_message versus the sippy package's parser.

Run: ``.venv/bin/python bench/bench_parser.py [iterations]`` (default 200000).

What each side does per iteration, on the same bytes (a 12-header INVITE with
a 7-line SDP body, the kind a desk phone sends):

* Växla: ``parse_message(data)`` — splits the start line and header lines,
  parses the Request-URI, checks Content-Length and slices the body, and
  eagerly parses top Via, CSeq, Call-ID, From and To — then reads
  ``call_id``, ``cseq``, ``top_via.branch``, ``from_.tag``, ``to`` and
  ``contacts`` (Contact is parsed here, lazily, on first access).
* sippy: ``SipRequest(data.decode())`` — sippy takes ``str``, so decoding the
  datagram is part of its cost as it would be in a server; it splits header
  lines, wraps each in a header object and slices the body — then
  ``getHFBody()`` on call-id, cseq (``getCSeq()``), via (``getBranch()``), from
  (``getTag()``), to (``getUrl()``) and every contact (``getUrl()``), which is
  what makes sippy parse those header bodies (its header objects parse on
  first ``getBody()``).  Neither side parses the SDP body.

Both run in the same process, interleaved, and each figure is the minimum
over ``timeit`` repeats of CPU time (``time.process_time``) so that other
load on a shared machine disturbs the comparison as little as possible.
"""

from __future__ import annotations

import sys
import time
import timeit
from collections.abc import Callable

from vaxla.sip.message import parse_message

SDP = (
    b"v=0\r\n"
    b"o=alice 2890844526 2890844526 IN IP4 pc33.atlanta.example.com\r\n"
    b"s=-\r\n"
    b"c=IN IP4 192.0.2.101\r\n"
    b"t=0 0\r\n"
    b"m=audio 49172 RTP/AVP 0 8 101\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
)

INVITE = (
    b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b"To: Bob <sip:bob@biloxi.example.com>\r\n"
    b'From: "Alice" <sip:alice@atlanta.example.com>;tag=1928301774\r\n'
    b"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:alice@pc33.atlanta.example.com;transport=udp>\r\n"
    b"Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, REFER, NOTIFY\r\n"
    b"Supported: replaces, timer\r\n"
    b"User-Agent: Example Phone 1.0\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: " + str(len(SDP)).encode() + b"\r\n"
    b"\r\n" + SDP
)


def vaxla_parse(data: bytes = INVITE) -> object:
    msg = parse_message(data)
    return (msg.call_id, msg.cseq, msg.top_via.branch, msg.from_.tag, msg.to, msg.contacts)


def make_sippy_parse() -> Callable[[], object]:
    from sippy.SipRequest import SipRequest

    def sippy_parse(data: bytes = INVITE) -> object:
        req = SipRequest(data.decode())
        return (
            req.getHFBody("call-id"),
            req.getHFBody("cseq").getCSeq(),
            req.getHFBody("via").getBranch(),
            req.getHFBody("from").getTag(),
            req.getHFBody("to").getUrl(),
            [c.getUrl() for c in req.getHFBodys("contact")],
        )

    return sippy_parse


def check_same_answers(sippy_parse: Callable[[], object]) -> None:
    ours = vaxla_parse()
    theirs = sippy_parse()
    assert isinstance(ours, tuple) and isinstance(theirs, tuple)
    assert ours[0] == str(theirs[0])  # Call-ID
    assert (ours[1].seq, ours[1].method) == tuple(theirs[1])  # CSeq
    assert ours[2] == theirs[2]  # top Via branch
    assert ours[3] == theirs[3]  # From tag


def main() -> None:
    iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    sippy_parse = make_sippy_parse()
    check_same_answers(sippy_parse)
    chunk = max(iterations // 10, 1)
    best = {"vaxla": float("inf"), "sippy": float("inf")}
    for _ in range(10):  # interleave: 10 rounds, each a chunk of both
        for name, fn in (("vaxla", vaxla_parse), ("sippy", sippy_parse)):
            t = min(timeit.repeat(fn, number=chunk, repeat=3, timer=time.process_time))
            best[name] = min(best[name], t / chunk)
    v_us, s_us = best["vaxla"] * 1e6, best["sippy"] * 1e6
    runs = 3 * iterations
    print(f"INVITE with SDP, {len(INVITE)} bytes; {runs} parses per side (10 rounds x 3 repeats)")
    print(f"vaxla parse_message + fields: {v_us:8.2f} us/parse")
    print(f"sippy SipRequest + fields:    {s_us:8.2f} us/parse")
    print(f"ratio sippy/vaxla:            {s_us / v_us:8.2f}x  (target >= 1.5x)")


if __name__ == "__main__":
    main()
