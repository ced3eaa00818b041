"""The per-source throttle of failed digest attempts (pure logic)."""

from __future__ import annotations

from vaxla.pbx.phone_auth import FailureThrottle


def test_source_is_blocked_after_limit_and_released_after_window() -> None:
    t = FailureThrottle(limit=3, window=60.0)
    src = ("192.0.2.1", 5060)
    for i in range(3):
        assert not t.blocked(src, float(i))
        t.failed(src, float(i))
    assert t.blocked(src, 3.0)
    assert not t.blocked(("192.0.2.1", 5061), 3.0)  # another phone on the same host
    assert t.blocked(src, 59.9)
    assert not t.blocked(src, 62.1)  # failures aged out


def test_memory_is_bounded() -> None:
    t = FailureThrottle(limit=3)
    for port in range(20_000):
        t.failed(("192.0.2.1", port), 0.0)
    assert len(t._failures) <= 10_000
