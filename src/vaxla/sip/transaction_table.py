"""Everything that decides what a SIP transaction does lives in this file.

RFC 3261 §17 (amended by RFC 6026) defines four transaction state machines.
Each is an Enum of states plus a table ``{(state, input): (actions, next_state)}``;
:mod:`vaxla.sip.transaction` only looks things up here and carries the
actions out. Timers are tied to states: :data:`STATE_TIMERS` says which timers
are started on entering a state; on leaving it, every running timer the new
state does not list is cancelled.

A ``(state, input)`` pair missing from a table means: a received message is
absorbed silently, an expired timer is ignored, and a response passed down by
the TU is a :class:`~vaxla.sip.errors.LocalProtocolError`.
"""

from __future__ import annotations

from enum import Enum, auto
from typing import Final


class _Enum(Enum):
    # Enum.__hash__ is written in Python; members are singletons compared by
    # identity, so the C-level object hash is equivalent and several times faster
    # for the (state, input) table lookups done on every message.
    __hash__ = object.__hash__


class Kind(_Enum):
    INVITE_CLIENT = auto()
    NON_INVITE_CLIENT = auto()
    INVITE_SERVER = auto()
    NON_INVITE_SERVER = auto()


class InviteClientState(_Enum):  # §17.1.1, RFC 6026 §7.2
    CALLING = auto()
    PROCEEDING = auto()
    ACCEPTED = auto()
    COMPLETED = auto()
    TERMINATED = auto()


class NonInviteClientState(_Enum):  # §17.1.2
    TRYING = auto()
    PROCEEDING = auto()
    COMPLETED = auto()
    TERMINATED = auto()


class InviteServerState(_Enum):  # §17.2.1, RFC 6026 §7.1
    PROCEEDING = auto()
    COMPLETED = auto()  # 3xx-6xx sent, waiting for the ACK (Timer G, H)
    CONFIRMED = auto()  # ACK for 3xx-6xx received (Timer I)
    ACCEPTED = auto()  # 2xx sent, retransmitting it until the ACK (Timer G, L)
    ACKED = auto()  # Accepted, ACK seen: no more 2xx retransmission (Timer L)
    TERMINATED = auto()


class NonInviteServerState(_Enum):  # §17.2.2
    TRYING = auto()
    PROCEEDING = auto()
    COMPLETED = auto()
    TERMINATED = auto()


State = InviteClientState | NonInviteClientState | InviteServerState | NonInviteServerState


class Timer(_Enum):
    A = auto()  # INVITE request retransmission (unreliable only), doubles
    B = auto()  # INVITE transaction timeout, 64*T1
    C = auto()  # guard: no final response. Client INVITE in Proceeding: 180 s, restarted by
    #             each provisional but 100 (§16.6 Timer C), 64*T1 after a CANCEL (§9.1).
    #             Server: the TU never answered (INVITE: 180 s, restarted by each provisional
    #             the TU sends but 100, §13.3.1.1; non-INVITE: 64*T1, when the client's
    #             Timer F has given up anyway).
    D = auto()  # wait for response retransmissions, 32 s / 0
    E = auto()  # non-INVITE request retransmission (unreliable only), capped at T2
    F = auto()  # non-INVITE transaction timeout, 64*T1
    K = auto()  # wait for response retransmissions, T4 / 0
    G = auto()  # INVITE final response retransmission (unreliable only), capped at T2
    H = auto()  # wait for ACK after 3xx-6xx, 64*T1
    I = auto()  # noqa: E741  wait for ACK retransmissions, T4 / 0
    J = auto()  # wait for non-INVITE request retransmissions, 64*T1 / 0
    L = auto()  # RFC 6026: server Accepted, 64*T1
    M = auto()  # RFC 6026: client Accepted, 64*T1
    TRYING = auto()  # send 100 Trying if the TU has not answered an INVITE in 200 ms


class Input(_Enum):
    # from the network
    RECV_1XX = auto()
    RECV_2XX = auto()
    RECV_FAILURE = auto()  # 300-699
    RECV_REQUEST = auto()  # a retransmission of the request that created the transaction
    RECV_ACK = auto()
    # from the TU
    SEND_1XX = auto()
    SEND_2XX = auto()
    SEND_FAILURE = auto()  # 300-699
    # from the transport
    TRANSPORT_ERROR = auto()
    # timers
    TIMER_A = auto()
    TIMER_B = auto()
    TIMER_C = auto()
    TIMER_D = auto()
    TIMER_E = auto()
    TIMER_F = auto()
    TIMER_K = auto()
    TIMER_G = auto()
    TIMER_H = auto()
    TIMER_I = auto()
    TIMER_J = auto()
    TIMER_L = auto()
    TIMER_M = auto()
    TIMER_TRYING = auto()


TIMER_INPUT: Final[dict[Timer, Input]] = {t: Input["TIMER_" + t.name] for t in Timer}

RECEIVE_INPUTS: Final = frozenset(
    {Input.RECV_1XX, Input.RECV_2XX, Input.RECV_FAILURE, Input.RECV_REQUEST, Input.RECV_ACK}
)
SEND_INPUTS: Final = frozenset({Input.SEND_1XX, Input.SEND_2XX, Input.SEND_FAILURE})


class Action(_Enum):
    PASS_RESPONSE = auto()  # ResponseReceived to the TU
    SEND_ACK = auto()  # build the ACK for a 3xx-6xx (§17.1.1.3), send it, keep it
    RESEND_ACK = auto()  # a 3xx-6xx came again: send the kept ACK again
    RETRANSMIT_REQUEST = auto()  # Timer A/E fired: resend, back off, re-arm
    RESTART_C = auto()  # a provisional response other than 100 restarts Timer C
    EMIT_TIMEOUT = auto()  # TransactionTimeout to the TU (no final response came / was sent)
    SEND_RESPONSE = auto()  # the TU's response: serialise once, send, keep
    RESEND_RESPONSE = auto()  # retransmitted request: resend the last response, if any
    RETRANSMIT_RESPONSE = auto()  # Timer G fired: resend, back off to T2, re-arm
    SEND_TRYING = auto()  # 100 Trying on the TU's behalf
    CANCEL_TRYING = auto()  # the TU answered: no automatic 100 Trying
    EMIT_ACK_RECEIVED = auto()  # AckReceived to the TU (ACK for a 2xx)
    EMIT_ACK_TIMEOUT = auto()  # AckTimeout to the TU


Transition = tuple[tuple[Action, ...], State]

_A = Action
_ICS = InviteClientState
_NCS = NonInviteClientState
_ISS = InviteServerState
_NSS = NonInviteServerState

INVITE_CLIENT: Final[dict[tuple[State, Input], Transition]] = {
    (_ICS.CALLING, Input.TIMER_A): ((_A.RETRANSMIT_REQUEST,), _ICS.CALLING),
    (_ICS.CALLING, Input.TIMER_B): ((_A.EMIT_TIMEOUT,), _ICS.TERMINATED),
    (_ICS.CALLING, Input.TRANSPORT_ERROR): ((_A.EMIT_TIMEOUT,), _ICS.TERMINATED),
    (_ICS.CALLING, Input.RECV_1XX): ((_A.PASS_RESPONSE,), _ICS.PROCEEDING),
    (_ICS.CALLING, Input.RECV_2XX): ((_A.PASS_RESPONSE,), _ICS.ACCEPTED),
    (_ICS.CALLING, Input.RECV_FAILURE): ((_A.PASS_RESPONSE, _A.SEND_ACK), _ICS.COMPLETED),
    (_ICS.PROCEEDING, Input.RECV_1XX): ((_A.PASS_RESPONSE, _A.RESTART_C), _ICS.PROCEEDING),
    (_ICS.PROCEEDING, Input.RECV_2XX): ((_A.PASS_RESPONSE,), _ICS.ACCEPTED),
    (_ICS.PROCEEDING, Input.RECV_FAILURE): ((_A.PASS_RESPONSE, _A.SEND_ACK), _ICS.COMPLETED),
    (_ICS.PROCEEDING, Input.TIMER_C): ((_A.EMIT_TIMEOUT,), _ICS.TERMINATED),
    (_ICS.PROCEEDING, Input.TRANSPORT_ERROR): ((_A.EMIT_TIMEOUT,), _ICS.TERMINATED),
    (_ICS.ACCEPTED, Input.RECV_2XX): ((_A.PASS_RESPONSE,), _ICS.ACCEPTED),
    (_ICS.ACCEPTED, Input.TIMER_M): ((), _ICS.TERMINATED),
    (_ICS.ACCEPTED, Input.TRANSPORT_ERROR): ((), _ICS.TERMINATED),
    (_ICS.COMPLETED, Input.RECV_FAILURE): ((_A.RESEND_ACK,), _ICS.COMPLETED),
    # a 2xx from another fork after a failure still reaches the TU
    (_ICS.COMPLETED, Input.RECV_2XX): ((_A.PASS_RESPONSE,), _ICS.COMPLETED),
    (_ICS.COMPLETED, Input.TIMER_D): ((), _ICS.TERMINATED),
    (_ICS.COMPLETED, Input.TRANSPORT_ERROR): ((), _ICS.TERMINATED),
}

NON_INVITE_CLIENT: Final[dict[tuple[State, Input], Transition]] = {
    (_NCS.TRYING, Input.TIMER_E): ((_A.RETRANSMIT_REQUEST,), _NCS.TRYING),
    (_NCS.TRYING, Input.TIMER_F): ((_A.EMIT_TIMEOUT,), _NCS.TERMINATED),
    (_NCS.TRYING, Input.TRANSPORT_ERROR): ((_A.EMIT_TIMEOUT,), _NCS.TERMINATED),
    (_NCS.TRYING, Input.RECV_1XX): ((_A.PASS_RESPONSE,), _NCS.PROCEEDING),
    (_NCS.TRYING, Input.RECV_2XX): ((_A.PASS_RESPONSE,), _NCS.COMPLETED),
    (_NCS.TRYING, Input.RECV_FAILURE): ((_A.PASS_RESPONSE,), _NCS.COMPLETED),
    (_NCS.PROCEEDING, Input.TIMER_E): ((_A.RETRANSMIT_REQUEST,), _NCS.PROCEEDING),
    (_NCS.PROCEEDING, Input.TIMER_F): ((_A.EMIT_TIMEOUT,), _NCS.TERMINATED),
    (_NCS.PROCEEDING, Input.TRANSPORT_ERROR): ((_A.EMIT_TIMEOUT,), _NCS.TERMINATED),
    (_NCS.PROCEEDING, Input.RECV_1XX): ((_A.PASS_RESPONSE,), _NCS.PROCEEDING),
    (_NCS.PROCEEDING, Input.RECV_2XX): ((_A.PASS_RESPONSE,), _NCS.COMPLETED),
    (_NCS.PROCEEDING, Input.RECV_FAILURE): ((_A.PASS_RESPONSE,), _NCS.COMPLETED),
    (_NCS.COMPLETED, Input.TIMER_K): ((), _NCS.TERMINATED),
    (_NCS.COMPLETED, Input.TRANSPORT_ERROR): ((), _NCS.TERMINATED),
}

INVITE_SERVER: Final[dict[tuple[State, Input], Transition]] = {
    (_ISS.PROCEEDING, Input.RECV_REQUEST): ((_A.RESEND_RESPONSE,), _ISS.PROCEEDING),
    (_ISS.PROCEEDING, Input.TIMER_TRYING): ((_A.SEND_TRYING,), _ISS.PROCEEDING),
    (_ISS.PROCEEDING, Input.SEND_1XX): (
        (_A.SEND_RESPONSE, _A.CANCEL_TRYING, _A.RESTART_C),
        _ISS.PROCEEDING,
    ),
    (_ISS.PROCEEDING, Input.TIMER_C): ((_A.EMIT_TIMEOUT,), _ISS.TERMINATED),
    (_ISS.PROCEEDING, Input.SEND_2XX): ((_A.SEND_RESPONSE,), _ISS.ACCEPTED),
    (_ISS.PROCEEDING, Input.SEND_FAILURE): ((_A.SEND_RESPONSE,), _ISS.COMPLETED),
    (_ISS.PROCEEDING, Input.TRANSPORT_ERROR): ((), _ISS.TERMINATED),
    (_ISS.COMPLETED, Input.RECV_REQUEST): ((_A.RESEND_RESPONSE,), _ISS.COMPLETED),
    (_ISS.COMPLETED, Input.TIMER_G): ((_A.RETRANSMIT_RESPONSE,), _ISS.COMPLETED),
    (_ISS.COMPLETED, Input.RECV_ACK): ((), _ISS.CONFIRMED),
    (_ISS.COMPLETED, Input.TIMER_H): ((_A.EMIT_ACK_TIMEOUT,), _ISS.TERMINATED),
    (_ISS.COMPLETED, Input.TRANSPORT_ERROR): ((_A.EMIT_ACK_TIMEOUT,), _ISS.TERMINATED),
    # §17.2.1: further responses from the TU are discarded once a 3xx-6xx was sent
    (_ISS.COMPLETED, Input.SEND_1XX): ((), _ISS.COMPLETED),
    (_ISS.COMPLETED, Input.SEND_2XX): ((), _ISS.COMPLETED),
    (_ISS.COMPLETED, Input.SEND_FAILURE): ((), _ISS.COMPLETED),
    (_ISS.CONFIRMED, Input.TIMER_I): ((), _ISS.TERMINATED),
    (_ISS.CONFIRMED, Input.TRANSPORT_ERROR): ((), _ISS.TERMINATED),
    (_ISS.CONFIRMED, Input.SEND_1XX): ((), _ISS.CONFIRMED),
    (_ISS.CONFIRMED, Input.SEND_2XX): ((), _ISS.CONFIRMED),
    (_ISS.CONFIRMED, Input.SEND_FAILURE): ((), _ISS.CONFIRMED),
    (_ISS.ACCEPTED, Input.RECV_REQUEST): ((_A.RESEND_RESPONSE,), _ISS.ACCEPTED),
    (_ISS.ACCEPTED, Input.TIMER_G): ((_A.RETRANSMIT_RESPONSE,), _ISS.ACCEPTED),
    (_ISS.ACCEPTED, Input.SEND_2XX): ((_A.SEND_RESPONSE,), _ISS.ACCEPTED),
    (_ISS.ACCEPTED, Input.RECV_ACK): ((_A.EMIT_ACK_RECEIVED,), _ISS.ACKED),
    (_ISS.ACCEPTED, Input.TIMER_L): ((_A.EMIT_ACK_TIMEOUT,), _ISS.TERMINATED),
    (_ISS.ACCEPTED, Input.TRANSPORT_ERROR): ((_A.EMIT_ACK_TIMEOUT,), _ISS.TERMINATED),
    (_ISS.ACKED, Input.SEND_2XX): ((_A.SEND_RESPONSE,), _ISS.ACKED),
    (_ISS.ACKED, Input.TIMER_L): ((), _ISS.TERMINATED),
    (_ISS.ACKED, Input.TRANSPORT_ERROR): ((), _ISS.TERMINATED),
}

NON_INVITE_SERVER: Final[dict[tuple[State, Input], Transition]] = {
    (_NSS.TRYING, Input.SEND_1XX): ((_A.SEND_RESPONSE,), _NSS.PROCEEDING),
    (_NSS.TRYING, Input.SEND_2XX): ((_A.SEND_RESPONSE,), _NSS.COMPLETED),
    (_NSS.TRYING, Input.SEND_FAILURE): ((_A.SEND_RESPONSE,), _NSS.COMPLETED),
    (_NSS.TRYING, Input.TRANSPORT_ERROR): ((), _NSS.TERMINATED),
    (_NSS.TRYING, Input.TIMER_C): ((_A.EMIT_TIMEOUT,), _NSS.TERMINATED),
    (_NSS.PROCEEDING, Input.RECV_REQUEST): ((_A.RESEND_RESPONSE,), _NSS.PROCEEDING),
    (_NSS.PROCEEDING, Input.SEND_1XX): ((_A.SEND_RESPONSE,), _NSS.PROCEEDING),
    (_NSS.PROCEEDING, Input.SEND_2XX): ((_A.SEND_RESPONSE,), _NSS.COMPLETED),
    (_NSS.PROCEEDING, Input.SEND_FAILURE): ((_A.SEND_RESPONSE,), _NSS.COMPLETED),
    (_NSS.PROCEEDING, Input.TRANSPORT_ERROR): ((), _NSS.TERMINATED),
    (_NSS.PROCEEDING, Input.TIMER_C): ((_A.EMIT_TIMEOUT,), _NSS.TERMINATED),
    (_NSS.COMPLETED, Input.RECV_REQUEST): ((_A.RESEND_RESPONSE,), _NSS.COMPLETED),
    # §17.2.2: any other final response from the TU is discarded in Completed
    (_NSS.COMPLETED, Input.SEND_1XX): ((), _NSS.COMPLETED),
    (_NSS.COMPLETED, Input.SEND_2XX): ((), _NSS.COMPLETED),
    (_NSS.COMPLETED, Input.SEND_FAILURE): ((), _NSS.COMPLETED),
    (_NSS.COMPLETED, Input.TIMER_J): ((), _NSS.TERMINATED),
    (_NSS.COMPLETED, Input.TRANSPORT_ERROR): ((), _NSS.TERMINATED),
}

TABLES: Final[dict[Kind, dict[tuple[State, Input], Transition]]] = {
    Kind.INVITE_CLIENT: INVITE_CLIENT,
    Kind.NON_INVITE_CLIENT: NON_INVITE_CLIENT,
    Kind.INVITE_SERVER: INVITE_SERVER,
    Kind.NON_INVITE_SERVER: NON_INVITE_SERVER,
}

STATES: Final[dict[Kind, type[Enum]]] = {
    Kind.INVITE_CLIENT: InviteClientState,
    Kind.NON_INVITE_CLIENT: NonInviteClientState,
    Kind.INVITE_SERVER: InviteServerState,
    Kind.NON_INVITE_SERVER: NonInviteServerState,
}

INITIAL: Final[dict[Kind, State]] = {
    Kind.INVITE_CLIENT: _ICS.CALLING,
    Kind.NON_INVITE_CLIENT: _NCS.TRYING,
    Kind.INVITE_SERVER: _ISS.PROCEEDING,
    Kind.NON_INVITE_SERVER: _NSS.TRYING,
}

TERMINATED: Final = frozenset({_ICS.TERMINATED, _NCS.TERMINATED, _ISS.TERMINATED, _NSS.TERMINATED})

# Timers started on entering a state (a timer already running and listed for the
# new state keeps running). Retransmission timers (A, E, G) are skipped on
# reliable transports; see ``duration``.
STATE_TIMERS: Final[dict[State, tuple[Timer, ...]]] = {
    _ICS.CALLING: (Timer.A, Timer.B),
    _ICS.PROCEEDING: (Timer.C,),
    _ICS.ACCEPTED: (Timer.M,),
    _ICS.COMPLETED: (Timer.D,),
    _ICS.TERMINATED: (),
    _NCS.TRYING: (Timer.E, Timer.F),
    _NCS.PROCEEDING: (Timer.E, Timer.F),
    _NCS.COMPLETED: (Timer.K,),
    _NCS.TERMINATED: (),
    _ISS.PROCEEDING: (Timer.TRYING, Timer.C),
    _ISS.COMPLETED: (Timer.G, Timer.H),
    _ISS.CONFIRMED: (Timer.I,),
    _ISS.ACCEPTED: (Timer.G, Timer.L),
    _ISS.ACKED: (Timer.L,),
    _ISS.TERMINATED: (),
    _NSS.TRYING: (Timer.C,),
    _NSS.PROCEEDING: (Timer.C,),
    _NSS.COMPLETED: (Timer.J,),
    _NSS.TERMINATED: (),
}

RETRANSMIT_TIMERS: Final = frozenset({Timer.A, Timer.E, Timer.G})
