"""What a conforming element does with each RFC 4475 torture message.

One row per file of ``shared/conformance/rfc4475/``.  ``outcome`` and
``status`` describe the SIP message layer (``parse_message`` followed by
``validate_request`` for requests):

* ``("valid", None)``: parses and passes the checks;
* ``("reject", N)``: a SipParseError with ``status_hint == N`` (and, when
  listed, ``extra_headers`` with these names) — a server answers N;
* ``("drop", None)``: a SipParseError with ``status_hint is None`` — a
  server sends nothing (malformed responses).

``server_statuses`` narrows what a running server may answer to a *valid*
request where the RFC says more than "process it" (None: any response the
request's semantics call for, but never a crash).  Rows unpack as tuples:
``outcome, status, *_ = EXPECTATIONS[name]``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, NamedTuple

#: The corpus sits in ``shared/`` beside the project root (``/work/shared`` next to ``/work/main``).
CORPUS_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "conformance" / "rfc4475"


class Expectation(NamedTuple):
    outcome: Literal["valid", "reject", "drop"]
    status: int | None
    extra_headers: tuple[str, ...] = ()
    kind: Literal["request", "response"] = "request"
    server_statuses: tuple[int, ...] | None = None
    note: str = ""


def _valid(note: str = "", server: tuple[int, ...] | None = None) -> Expectation:
    return Expectation("valid", None, server_statuses=server, note=note)


def _reject(status: int, note: str = "", extra: tuple[str, ...] = ()) -> Expectation:
    return Expectation("reject", status, extra, note=note)


def _response(outcome: Literal["valid", "drop"], note: str) -> Expectation:
    return Expectation(outcome, None, kind="response", note=note)


EXPECTATIONS: dict[str, Expectation] = {
    # 3.1.1 valid messages
    "wsinv.dat": _valid("3.1.1.1 short tortuous INVITE: folding, LWS, escapes in quotes"),
    "intmeth.dat": _valid("3.1.1.2 unusual characters; a UAS answers 405/501", (405, 501)),
    "esc01.dat": _valid("3.1.1.3 %-escapes; escaped and unescaped URIs are equivalent"),
    "escnull.dat": _valid("3.1.1.4 escaped nulls in URIs"),
    "esc02.dat": _valid("3.1.1.5 % that is not an escape (method, display, branch)"),
    "lwsdisp.dat": _valid("3.1.1.6 no LWS between display name and <"),
    "longreq.dat": _valid("3.1.1.7 long values, 34 Vias, compact names"),
    "dblreq.dat": _valid("3.1.1.8 octets after Content-Length ignored (one response only)"),
    "semiuri.dat": _valid("3.1.1.9 ; in the user part of the Request-URI"),
    "transports.dat": _valid("3.1.1.10 varied and unknown Via transports"),
    "mpart01.dat": _valid("3.1.1.11 multipart MIME body with binary part"),
    "unreason.dat": _response("valid", "3.1.1.12 UTF-8 reason phrase"),
    "noreason.dat": _response("valid", "3.1.1.13 empty reason phrase"),
    # 3.1.2 invalid messages
    "badinv01.dat": _reject(400, "3.1.2.1 extraneous ; and , in Via and Contact"),
    "clerr.dat": _reject(400, "3.1.2.2 Content-Length larger than the datagram"),
    "ncl.dat": _reject(400, "3.1.2.3 negative Content-Length"),
    "scalar02.dat": _reject(400, "3.1.2.4 overlarge CSeq (also Max-Forwards, Expires)"),
    "scalarlg.dat": _response("drop", "3.1.2.5 response with overlarge scalars"),
    "quotbal.dat": _reject(400, "3.1.2.6 unterminated quoted display name"),
    "ltgtruri.dat": _reject(400, "3.1.2.7 <> around the Request-URI"),
    "lwsruri.dat": _reject(400, "3.1.2.8 LWS inside the Request-URI"),
    "lwsstart.dat": _reject(400, "3.1.2.9 several SP between Request-Line elements"),
    "trws.dat": _reject(400, "3.1.2.10 SP at the end of the Request-Line"),
    "escruri.dat": _reject(400, "3.1.2.11 escaped headers in the Request-URI (a UAS rejects)"),
    "baddate.dat": _valid("3.1.2.12 bad Date time zone: accept, ignore the Date"),
    "regbadct.dat": _reject(400, "3.1.2.13 Contact URI with ? not enclosed in <>"),
    "badaspec.dat": _reject(400, "3.1.2.14 spaces inside <addr-spec>"),
    "baddn.dat": _reject(400, "3.1.2.15 unquoted display name with a comma"),
    "badvers.dat": _reject(505, "3.1.2.16 SIP/7.0"),
    "mismatch01.dat": _reject(400, "3.1.2.17 CSeq method differs from the method"),
    "mismatch02.dat": _reject(400, "3.1.2.18 unknown method, CSeq method differs"),
    "bigcode.dat": _response("drop", "3.1.2.19 status code 4294967301"),
    # 3.2 transaction layer
    "badbranch.dat": _valid("3.2.1 branch without the magic cookie body: RFC 2543 matching"),
    # 3.3 application layer
    "insuf.dat": _reject(400, "3.3.1 To, From, Call-ID, Max-Forwards missing"),
    "unkscm.dat": _reject(416, "3.3.2 unknown Request-URI scheme"),
    "novelsc.dat": _reject(416, "3.3.3 soap.beep: known but not servable here; RFC allows 416"),
    "unksm2.dat": _valid("3.3.4 unknown schemes in To, From, Contact"),
    "bext01.dat": _reject(420, "3.3.5 unknown Require/Proxy-Require options", ("Unsupported",)),
    "invut.dat": _reject(415, "3.3.6 unknown Content-Type", ("Accept",)),
    "regaut01.dat": _valid("3.3.7 unknown auth scheme: ignore it and challenge", (401,)),
    "multi01.dat": _reject(400, "3.3.8 single-value headers given twice"),
    "mcl01.dat": _reject(400, "3.3.9 two Content-Length values"),
    "bcast.dat": _response("valid", "3.3.10 200 OK with a broadcast Via: never send there"),
    "zeromf.dat": _valid("3.3.11 Max-Forwards 0: a proxy answers 483, a UAS may process"),
    "cparam01.dat": _valid("3.3.12 Contact header parameter (addr-spec form)"),
    "cparam02.dat": _valid("3.3.13 Contact URI parameter"),
    "regescrt.dat": _valid("3.3.14 escaped Route in the Contact URI: do not act on it"),
    "sdp01.dat": _reject(406, "3.3.15 Accept without application/sdp on INVITE"),
    # 3.4 backward compatibility
    "inv2543.dat": _valid("3.4.1 RFC 2543 INVITE: no branch, no tags, no Max-Forwards"),
}
