"""Password and PIN hashing with argon2id (argon2-cffi).

Hashing runs in a worker thread: argon2 is deliberately slow and memory
hungry, and the event loop also carries SIP and RTP.
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_PASSWORD = 8


class PasswordHashing:
    """argon2id with OWASP's minimum parameters by default (19 MiB, t=2, p=1)."""

    def __init__(self, time_cost: int = 2, memory_cost: int = 19 * 1024, parallelism: int = 1):
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism
        )
        self._dummy = self._hasher.hash("not a password of anyone")

    def hash_now(self, secret: str) -> str:
        return self._hasher.hash(secret)

    def verify_now(self, hashed: str, secret: str) -> bool:
        try:
            return self._hasher.verify(hashed, secret)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, hashed: str) -> bool:
        return self._hasher.check_needs_rehash(hashed)

    async def hash(self, secret: str) -> str:
        return await asyncio.to_thread(self.hash_now, secret)

    async def verify(self, hashed: str | None, secret: str) -> bool:
        """True when ``secret`` matches; an unknown user (None) costs the same time."""
        if hashed is None:
            await asyncio.to_thread(self.verify_now, self._dummy, secret)
            return False
        return await asyncio.to_thread(self.verify_now, hashed, secret)
