"""A phone's state for presence (R83): free, ringing, busy or unregistered.

One rule for everyone who shows it: the B2BUA (from its live calls) and
the web console (from ``call.state`` events on the bus, so also for calls on
other nodes).
"""

from __future__ import annotations

from collections.abc import Iterable

FREE, RINGING, BUSY, UNREGISTERED = "free", "ringing", "busy", "unregistered"


def phone_state(
    extension: str, calls: Iterable[tuple[str, str, bool]], registered: bool | None
) -> str:
    """``calls``: (caller, callee, answered) of live calls; ``registered`` None: unknown.

    Busy in an answered call or while calling out; ringing while called;
    else unregistered when known not to be registered, or free.
    """
    ringing = False
    for caller, callee, answered in calls:
        if extension not in (caller, callee):
            continue
        if answered or caller == extension:
            return BUSY
        ringing = True
    if ringing:
        return RINGING
    return UNREGISTERED if registered is False else FREE
