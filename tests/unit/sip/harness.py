"""Two transaction layers over a fake network that loses, duplicates and delays.

Messages cross the network as bytes and are parsed on arrival, so the harness
also checks that what the layer serialises parses back. Everything is driven
by one simulated clock; randomness comes from a seeded ``random.Random``.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from vaxla.sip.events import Event
from vaxla.sip.message import Request, Response, parse_message
from vaxla.sip.transaction import Peer, TimerConfig, TransactionLayer

Handler = Callable[["Node", Event, float], None]


@dataclass
class LossyNetwork:
    """Delivers each datagram after a random delay, or drops or duplicates it."""

    rng: random.Random
    loss: float = 0.0
    duplicate: float = 0.0
    min_delay: float = 0.005
    max_delay: float = 0.05
    sent: int = 0
    dropped: int = 0
    _queue: list[tuple[float, int, bytes, Peer, Peer]] = field(default_factory=list)
    _seq: itertools.count[int] = field(default_factory=itertools.count)

    def send(self, data: bytes, src: Peer, dst: Peer, now: float) -> None:
        self.sent += 1
        copies = 2 if self.rng.random() < self.duplicate else 1
        for _ in range(copies):
            if self.rng.random() < self.loss:
                self.dropped += 1
                continue
            at = now + self.rng.uniform(self.min_delay, self.max_delay)
            heapq.heappush(self._queue, (at, next(self._seq), data, src, dst))

    def next_delivery(self) -> float | None:
        return self._queue[0][0] if self._queue else None

    def due(self, now: float) -> list[tuple[bytes, Peer, Peer]]:
        out = []
        while self._queue and self._queue[0][0] <= now:
            _, _, data, src, dst = heapq.heappop(self._queue)
            out.append((data, src, dst))
        return out


@dataclass
class Node:
    """One SIP endpoint: a transaction layer at an address, with a TU callback."""

    address: Peer
    layer: TransactionLayer
    handler: Handler
    events: list[Event] = field(default_factory=list)


class Harness:
    """Runs nodes over a :class:`LossyNetwork` until a condition holds or time is up."""

    def __init__(self, network: LossyNetwork, timers: TimerConfig | None = None) -> None:
        self.network = network
        self.timers = timers or TimerConfig()
        self.now = 0.0
        self.nodes: dict[Peer, Node] = {}

    def add_node(self, address: Peer, handler: Handler) -> Node:
        node = Node(address, TransactionLayer(self.timers), handler)
        self.nodes[address] = node
        return node

    def flush(self) -> None:
        for node in self.nodes.values():
            for data, dst in node.layer.datagrams_to_send():
                self.network.send(data, node.address, dst, self.now)

    def dispatch(self, node: Node, events: list[Event]) -> None:
        for event in events:
            node.events.append(event)
            node.handler(node, event, self.now)

    def step(self) -> bool:
        """Advance to the next thing that happens; False when nothing is left."""
        self.flush()
        candidates = [self.network.next_delivery()]
        candidates += [node.layer.get_timer() for node in self.nodes.values()]
        pending = [t for t in candidates if t is not None]
        if not pending:
            return False
        self.now = max(self.now, min(pending))
        for data, src, dst in self.network.due(self.now):
            node = self.nodes[dst]
            message: Request | Response = parse_message(data)
            self.dispatch(node, node.layer.receive(message, src, self.now))
            self.flush()
        for node in self.nodes.values():
            deadline = node.layer.get_timer()
            if deadline is not None and deadline <= self.now:
                self.dispatch(node, node.layer.handle_timer(self.now))
        self.flush()
        return True

    def run(self, until: Callable[[], bool] | None = None, limit: float = 600.0) -> None:
        while self.now <= limit:
            if until is not None and until():
                return
            if not self.step():
                return
