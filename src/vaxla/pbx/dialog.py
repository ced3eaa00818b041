"""One side of a B2BUA call as an RFC 3261 §12 dialog, and request builders."""

from __future__ import annotations

from dataclasses import dataclass

from vaxla.sip.headers import Headers
from vaxla.sip.message import Request, Response, new_branch
from vaxla.sip.transaction import Peer
from vaxla.sip.uri import parse_uri

USER_AGENT = "Vaxla/0.1"
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, REGISTER"


@dataclass(frozen=True, slots=True)
class LocalAddress:
    """How we name ourselves in Via and Contact on one transport."""

    host: str
    port: int

    def via(self, transport: str, branch: str) -> str:
        return f"SIP/2.0/{transport.upper()} {self.host}:{self.port};branch={branch};rport"

    def contact(self, transport: str) -> str:
        suffix = "" if transport == "udp" else f";transport={transport}"
        return f"<sip:vaxla@{self.host}:{self.port}{suffix}>"


@dataclass(slots=True)
class Dialog:
    call_id: str
    local_tag: str
    remote_tag: str | None
    local_uri: str  # our From (UAC side) / To (UAS side) without tag, as name-addr
    remote_uri: str
    remote_target: str  # the peer's Contact URI
    route_set: list[str]
    local_cseq: int
    peer: Peer  # where in-dialog requests go: the flow the dialog was set up on
    confirmed: bool = False

    def request(
        self,
        method: str,
        me: LocalAddress,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        cseq: int | None = None,
        branch: str | None = None,
    ) -> Request:
        if cseq is None:
            self.local_cseq += 1
            cseq = self.local_cseq
        h = Headers()
        h.add("Via", me.via(self.peer.transport, branch or new_branch()))
        h.add("Max-Forwards", "70")
        for route in self.route_set:
            h.add("Route", route)
        h.add("From", f"{self.local_uri};tag={self.local_tag}")
        to = (
            self.remote_uri
            if self.remote_tag is None
            else f"{self.remote_uri};tag={self.remote_tag}"
        )
        h.add("To", to)
        h.add("Call-ID", self.call_id)
        h.add("CSeq", f"{cseq} {method}")
        if method not in ("ACK", "CANCEL", "BYE"):
            h.add("Contact", me.contact(self.peer.transport))
        h.add("User-Agent", USER_AGENT)
        if content_type and body:
            h.add("Content-Type", content_type)
        return Request(method, parse_uri(self.remote_target), h, body)


def build_cancel(invite: Request) -> Request:
    """RFC 3261 §9.1: same Request-URI, Call-ID, From, To, CSeq number and top Via."""
    h = Headers()
    h.add("Via", invite.headers.get_all("Via")[0])
    h.add("Max-Forwards", "70")
    for route in invite.headers.get_all("Route"):
        h.add("Route", route)
    h.add("From", invite.headers.get("From") or "")
    h.add("To", invite.headers.get("To") or "")
    h.add("Call-ID", invite.call_id)
    h.add("CSeq", f"{invite.cseq.seq} CANCEL")
    h.add("User-Agent", USER_AGENT)
    return Request("CANCEL", invite.uri, h, b"")


def remote_target_of(message: Request | Response, fallback: str) -> str:
    contacts = message.contacts
    return str(contacts[0].uri) if contacts else fallback
