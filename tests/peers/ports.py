"""Free loopback ports for test peers.

A port is handed out only when it can be bound on 127.0.0.1 for both UDP and
TCP (SIP uses both).  Ports handed out by this process are remembered so two
peers started by the same test run never get the same one, even before the
first peer has bound it.  Ports are drawn at random from a high range that is
outside Linux's default ephemeral range (32768-60999), so a port chosen here
is unlikely to be taken by an outgoing connection in the meantime.
"""

from __future__ import annotations

import random
import socket
import threading

LOOPBACK = "127.0.0.1"

_RANGE = (20000, 32000)
_lock = threading.Lock()
_handed_out: set[int] = set()


def _bindable(port: int, host: str = LOOPBACK) -> bool:
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            if kind == socket.SOCK_STREAM:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except OSError:
                return False
    return True


def free_port(span: int = 1, *, host: str = LOOPBACK, attempts: int = 500) -> int:
    """Return a port P such that P .. P+span-1 are free for UDP and TCP on ``host``.

    ``span=2`` suits baresip, which binds SIP on P and SIP/TLS on P+1.
    """
    if span < 1:
        raise ValueError("span must be >= 1")
    rng = random.SystemRandom()
    with _lock:
        for _ in range(attempts):
            port = rng.randrange(_RANGE[0], _RANGE[1] - span)
            candidates = range(port, port + span)
            if any(p in _handed_out for p in candidates):
                continue
            if all(_bindable(p, host) for p in candidates):
                _handed_out.update(candidates)
                return port
    raise RuntimeError(f"no free port block of {span} found on {host}")


def release_port(port: int, span: int = 1) -> None:
    """Let ``port`` .. ``port+span-1`` be handed out again (optional)."""
    with _lock:
        for p in range(port, port + span):
            _handed_out.discard(p)
