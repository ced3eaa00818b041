"""Events the transaction layer hands to its transaction user (TU).

Frozen, slotted dataclasses, returned as lists by
:meth:`vaxla.sip.transaction.TransactionLayer.receive`, ``handle_timer`` and
``transport_error``. :class:`Peer` lives here too because every event that
carries a message says where it came from.
"""

from __future__ import annotations

from dataclasses import dataclass

from vaxla.sip.message import Request, Response

__all__ = [
    "AckReceived",
    "AckTimeout",
    "CancelReceived",
    "Event",
    "Peer",
    "RequestReceived",
    "ResponseReceived",
    "TransactionTerminated",
    "TransactionTimeout",
]

_RELIABLE = frozenset({"tcp", "tls", "ws", "wss", "sctp", "tls-sctp"})


@dataclass(frozen=True, slots=True)
class Peer:
    """The remote end of a message: transport, address and (for streams) connection."""

    transport: str  # "udp" | "tcp" | "tls" | "ws" | "wss"
    host: str
    port: int
    connection_id: int | None = None  # stream transports: which connection to answer on

    @property
    def reliable(self) -> bool:
        """True for stream transports: no retransmission timers run over them."""
        return self.transport.lower() in _RELIABLE


@dataclass(frozen=True, slots=True)
class RequestReceived:
    """A request created a new server transaction (never sent for ACK or CANCEL)."""

    txn_id: str
    request: Request
    peer: Peer


@dataclass(frozen=True, slots=True)
class AckReceived:
    """An ACK for a 2xx: it belongs to the dialog, not to a transaction.

    Emitted once when the ACK ends an INVITE server transaction's Accepted state,
    and for every ACK that matches no transaction at all.
    """

    request: Request
    peer: Peer


@dataclass(frozen=True, slots=True)
class CancelReceived:
    """A CANCEL arrived. The layer already answered it: 200 when ``invite_txn_id``
    names the matched INVITE server transaction, 481 when it is None."""

    txn_id: str
    request: Request
    peer: Peer
    invite_txn_id: str | None


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    """A response for a client transaction.

    ``txn_id`` is None for a 2xx to an INVITE whose client transaction is gone
    (a retransmission the dialog layer should ACK again).
    """

    txn_id: str | None
    response: Response
    peer: Peer


@dataclass(frozen=True, slots=True)
class TransactionTimeout:
    """No final response: on a client transaction Timer B or F (or the Proceeding
    guard, Timer C) expired or the transport reported an error; on a server
    transaction the TU left the request unanswered (64*T1 for non-INVITE, Timer C
    for INVITE) and the transaction is dropped without a response."""

    txn_id: str


@dataclass(frozen=True, slots=True)
class AckTimeout:
    """An INVITE server transaction sent a final response and no ACK came
    within 64*T1 (Timer L in RFC 6026 Accepted state, Timer H after 3xx-6xx),
    or the transport failed before the ACK came."""

    txn_id: str


@dataclass(frozen=True, slots=True)
class TransactionTerminated:
    """The transaction is gone; its id may not be used again."""

    txn_id: str


Event = (
    RequestReceived
    | AckReceived
    | CancelReceived
    | ResponseReceived
    | TransactionTimeout
    | AckTimeout
    | TransactionTerminated
)
