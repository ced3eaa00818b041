"""RTP port allocation from a configured range (even RTP port, RTCP on +1)."""

from __future__ import annotations


class PortsExhaustedError(RuntimeError):
    """Every port pair of the range is in use."""


class PortAllocator:
    """Hands out even RTP ports from ``[port_min, port_max]``, round robin.

    Round robin (rather than lowest-free) keeps a just-released port out of
    use for as long as possible, so late packets of an old call do not land
    in a new one. A port the OS refuses (another program holds it) is
    reported with :meth:`refused` and skipped for a while.
    """

    def __init__(self, port_min: int, port_max: int) -> None:
        first = port_min + (port_min & 1)
        if first + 1 > port_max or first < 1024 or port_max > 65535:
            raise ValueError(f"bad RTP port range {port_min}-{port_max}")
        self.first = first
        self.last = first + ((port_max - 1 - first) // 2) * 2  # last + 1 <= port_max
        self._used: set[int] = set()
        self._next = first

    @property
    def capacity(self) -> int:
        return (self.last - self.first) // 2 + 1

    @property
    def in_use(self) -> int:
        return len(self._used)

    def allocate(self) -> int:
        """An even port P whose pair (P, P + 1) is free."""
        for _ in range(self.capacity):
            port = self._next
            self._next = self.first if port >= self.last else port + 2
            if port not in self._used:
                self._used.add(port)
                return port
        raise PortsExhaustedError(f"all {self.capacity} RTP port pairs are in use")

    def release(self, port: int) -> None:
        self._used.discard(port)
