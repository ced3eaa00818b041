"""The location service: where each extension's phones can be reached.

Bindings live in memory for fast call routing and are written to the
database before a REGISTER is answered, so a restart keeps them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, select

from vaxla.sip.transaction import Peer
from vaxla.store.db import Database
from vaxla.store.models import Binding


@dataclass(slots=True)
class Contact:
    aor: str
    uri: str
    expires_at: float  # wall-clock epoch seconds
    call_id: str
    cseq: int
    q: str | None
    peer: Peer  # where the REGISTER came from: requests go back there (NAT)
    user_agent: str = ""

    def remaining(self, now: float) -> int:
        return max(0, int(self.expires_at - now))


def _to_dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


class LocationService:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._bindings: dict[str, dict[str, Contact]] = {}

    async def load(self, now: float) -> int:
        """Read the persisted bindings; expired ones are dropped."""
        self._bindings.clear()
        async with self.db.transaction() as s:
            await s.execute(delete(Binding).where(Binding.expires_at <= _to_dt(now)))
            rows = await s.scalars(select(Binding))
            for b in rows:
                contact = Contact(
                    aor=b.aor,
                    uri=b.contact_uri,
                    expires_at=b.expires_at.timestamp(),
                    call_id=b.call_id,
                    cseq=b.cseq,
                    q=b.q,
                    peer=Peer(b.transport, b.source_host, b.source_port),
                    user_agent=b.user_agent,
                )
                self._bindings.setdefault(b.aor, {})[b.contact_uri] = contact
        return self.count()

    def lookup(self, aor: str, now: float) -> list[Contact]:
        contacts = self._bindings.get(aor)
        if not contacts:
            return []
        return [c for c in contacts.values() if c.expires_at > now]

    def bindings(self, aor: str) -> dict[str, Contact]:
        """All stored bindings of an AOR (also expired ones not yet purged)."""
        return dict(self._bindings.get(aor, {}))

    def count(self) -> int:
        return sum(len(v) for v in self._bindings.values())

    def all(self, now: float) -> list[Contact]:
        return [c for v in self._bindings.values() for c in v.values() if c.expires_at > now]

    async def apply(self, aor: str, upsert: list[Contact], remove: list[str], now: float) -> None:
        """Persist the change, then make it visible to routing."""
        async with self.db.transaction() as s:
            if remove:
                await s.execute(
                    delete(Binding).where(Binding.aor == aor, Binding.contact_uri.in_(remove))
                )
            for c in upsert:
                row = await s.scalar(
                    select(Binding).where(Binding.aor == aor, Binding.contact_uri == c.uri)
                )
                if row is None:
                    row = Binding(aor=aor, contact_uri=c.uri)
                    s.add(row)
                row.expires_at = _to_dt(c.expires_at)
                row.call_id = c.call_id
                row.cseq = c.cseq
                row.q = c.q
                row.transport = c.peer.transport
                row.source_host = c.peer.host
                row.source_port = c.peer.port
                row.user_agent = c.user_agent[:200]
                row.updated_at = _to_dt(now)
        current = self._bindings.setdefault(aor, {})
        for uri in remove:
            current.pop(uri, None)
        for c in upsert:
            current[c.uri] = c
        if not current:
            del self._bindings[aor]

    async def purge_expired(self, now: float) -> int:
        expired = [
            (aor, uri)
            for aor, contacts in self._bindings.items()
            for uri, c in contacts.items()
            if c.expires_at <= now
        ]
        if not expired:
            return 0
        async with self.db.transaction() as s:
            await s.execute(delete(Binding).where(Binding.expires_at <= _to_dt(now)))
        for aor, uri in expired:
            contacts = self._bindings.get(aor)
            if contacts is not None:
                contacts.pop(uri, None)
                if not contacts:
                    del self._bindings[aor]
        return len(expired)

    def forget_aor(self, aor: str) -> None:
        self._bindings.pop(aor, None)
