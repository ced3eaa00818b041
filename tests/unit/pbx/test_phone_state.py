"""The one presence rule (R83) that the B2BUA and the web console share."""

from __future__ import annotations

from vaxla.pbx.phone_state import BUSY, FREE, RINGING, UNREGISTERED, phone_state


def test_states() -> None:
    assert phone_state("1001", [], True) == FREE
    assert phone_state("1001", [], None) == FREE  # registration unknown: not claimed away
    assert phone_state("1001", [], False) == UNREGISTERED
    assert phone_state("1001", [("1002", "1001", False)], True) == RINGING
    assert phone_state("1001", [("1001", "1002", False)], True) == BUSY  # calling out
    assert phone_state("1001", [("1002", "1001", True)], True) == BUSY
    # Busy wins over ringing (a second call rings in while talking), and a
    # ringing phone is ringing even if the registration just lapsed.
    assert phone_state("1001", [("1003", "1001", False), ("1001", "1002", True)], True) == BUSY
    assert phone_state("1001", [("1003", "1001", False)], False) == RINGING
    assert phone_state("1001", [("1003", "1004", True)], True) == FREE  # others' calls
