"""Extensions: the numbers phones register as, with their digest secrets."""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, select

from vaxla.config import DIGEST_ALGORITHMS
from vaxla.errors import ExtensionExists, ExtensionNotFound, InvalidExtension
from vaxla.sip.auth import compute_ha1
from vaxla.store.db import Database
from vaxla.store.models import Extension

NUMBER_RE = re.compile(r"^[0-9]{2,15}$")
MIN_PASSWORD = 6


@dataclass(frozen=True, slots=True)
class ExtensionInfo:
    number: str
    display_name: str
    digest_algorithms: tuple[str, ...]
    enabled: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class DigestSecrets:
    """What the registrar needs to check a phone's digest response."""

    realm: str
    ha1: dict[str, str]  # algorithm -> HA1 hex
    algorithms: tuple[str, ...]  # empty: use the server's default
    enabled: bool


def _info(ext: Extension) -> ExtensionInfo:
    algs = tuple(a for a in ext.digest_algorithms.split(",") if a)
    return ExtensionInfo(ext.number, ext.display_name, algs, ext.enabled, ext.created_at)


def _check_algorithms(algorithms: list[str] | None) -> str:
    if not algorithms:
        return ""
    upper = [a.upper() for a in algorithms]
    for a in upper:
        if a not in DIGEST_ALGORITHMS:
            raise InvalidExtension(f"unknown digest algorithm {a}", field="digest_algorithms")
    return ",".join(upper)


class ExtensionStore:
    """Create, list and remove extensions; look up their digest secrets.

    Lookups on the call path (``secrets``, ``exists``) are cached for
    ``cache_ttl`` seconds: changes made through this store take effect at once,
    changes made by another node within the TTL.
    """

    def __init__(self, db: Database, realm: str, cache_ttl: float = 5.0) -> None:
        self.db = db
        self.realm = realm
        self.cache_ttl = cache_ttl
        self._cache: dict[str, tuple[float, DigestSecrets | None]] = {}
        self._inflight: dict[str, asyncio.Future[DigestSecrets | None]] = {}

    def _forget(self, number: str) -> None:
        self._cache.pop(number, None)

    async def add(
        self,
        number: str,
        name: str,
        password: str,
        algorithms: list[str] | None = None,
    ) -> ExtensionInfo:
        if not NUMBER_RE.match(number):
            raise InvalidExtension("an extension is 2 to 15 digits", field="number")
        if len(password) < MIN_PASSWORD:
            raise InvalidExtension(
                f"the password needs at least {MIN_PASSWORD} characters", field="password"
            )
        ext = Extension(
            number=number,
            display_name=name,
            realm=self.realm,
            ha1_md5=compute_ha1(number, self.realm, password, "MD5"),
            ha1_sha256=compute_ha1(number, self.realm, password, "SHA-256"),
            digest_algorithms=_check_algorithms(algorithms),
            enabled=True,
            created_at=datetime.now(UTC),
        )
        async with self.db.transaction() as s:
            exists = await s.scalar(select(Extension.id).where(Extension.number == number))
            if exists is not None:
                raise ExtensionExists(f"extension {number} already exists", number=number)
            s.add(ext)
        self._forget(number)
        return _info(ext)

    async def list(self) -> list[ExtensionInfo]:
        async with self.db.session() as s:
            rows = await s.scalars(select(Extension).order_by(Extension.number))
            return [_info(e) for e in rows]

    async def get(self, number: str) -> ExtensionInfo:
        async with self.db.session() as s:
            ext = await s.scalar(select(Extension).where(Extension.number == number))
            if ext is None:
                raise ExtensionNotFound(f"no extension {number}", number=number)
            return _info(ext)

    async def remove(self, number: str) -> None:
        async with self.db.transaction() as s:
            result = await s.execute(delete(Extension).where(Extension.number == number))
            if result.rowcount == 0:  # type: ignore[attr-defined]
                raise ExtensionNotFound(f"no extension {number}", number=number)
        self._forget(number)

    async def set_password(self, number: str, password: str) -> None:
        if len(password) < MIN_PASSWORD:
            raise InvalidExtension(
                f"the password needs at least {MIN_PASSWORD} characters", field="password"
            )
        async with self.db.transaction() as s:
            ext = await s.scalar(select(Extension).where(Extension.number == number))
            if ext is None:
                raise ExtensionNotFound(f"no extension {number}", number=number)
            ext.realm = self.realm
            ext.ha1_md5 = compute_ha1(number, self.realm, password, "MD5")
            ext.ha1_sha256 = compute_ha1(number, self.realm, password, "SHA-256")
        self._forget(number)

    async def secrets(self, number: str) -> DigestSecrets | None:
        """The extension's digest secrets (None: no such extension).

        A cached entry past its TTL is still answered at once while one
        background query refreshes it; concurrent misses share one query.
        """
        now = time.monotonic()
        cached = self._cache.get(number)
        if cached is not None:
            if cached[0] <= now and number not in self._inflight:
                self._start_load(number)
            return cached[1]
        pending = self._inflight.get(number) or self._start_load(number)
        return await asyncio.shield(pending)

    def _start_load(self, number: str) -> asyncio.Future[DigestSecrets | None]:
        future = self._inflight[number] = asyncio.ensure_future(self._load(number))
        # A failed background refresh is logged by whoever awaits; never unobserved.
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        return future

    async def _load(self, number: str) -> DigestSecrets | None:
        try:
            async with self.db.session() as s:
                ext = await s.scalar(select(Extension).where(Extension.number == number))
            found = None
            if ext is not None:
                found = DigestSecrets(
                    realm=ext.realm,
                    ha1={"MD5": ext.ha1_md5, "SHA-256": ext.ha1_sha256},
                    algorithms=tuple(a for a in ext.digest_algorithms.split(",") if a),
                    enabled=ext.enabled,
                )
            if len(self._cache) > 50_000:
                self._cache.clear()
            self._cache[number] = (time.monotonic() + self.cache_ttl, found)
            return found
        finally:
            self._inflight.pop(number, None)

    async def exists(self, number: str) -> bool:
        found = await self.secrets(number)
        return found is not None and found.enabled
