"""The registrar (RFC 3261 §10): authenticates REGISTER and keeps bindings."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import time
from collections.abc import Callable

from vaxla.events import EventBus
from vaxla.metrics import Metrics
from vaxla.net.stack import SipStack
from vaxla.pbx.location import LocationService
from vaxla.pbx.phone_auth import PhoneAuth
from vaxla.pbx.registration import ExpiryPolicy, contact_headers, plan_register
from vaxla.sip.message import Request, make_response, new_tag
from vaxla.sip.transaction import Peer
from vaxla.sip.uri import SipURI

log = logging.getLogger("vaxla.registrar")


class Registrar:
    def __init__(
        self,
        stack: SipStack,
        auth: PhoneAuth,
        location: LocationService,
        policy: ExpiryPolicy,
        metrics: Metrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.stack = stack
        self.auth = auth
        self.location = location
        self.policy = policy
        self.metrics = metrics
        self.clock = clock
        self._locks: dict[str, asyncio.Lock] = {}
        self.bus: EventBus | None = None

    def _answer(
        self,
        txn_id: str,
        request: Request,
        status: int,
        reason: str | None = None,
        headers: list[tuple[str, str]] | tuple[tuple[str, str], ...] = (),
    ) -> None:
        response = make_response(request, status, reason, to_tag=new_tag(), headers=headers)
        self.stack.send_response(txn_id, response)

    async def handle(self, txn_id: str, request: Request, peer: Peer) -> None:
        to_uri = request.to.uri
        if not isinstance(to_uri, SipURI) or not to_uri.user:
            # RFC 3261 §10.3 step 3: not an address-of-record of ours.
            self._answer(txn_id, request, 404, "Not an address-of-record here")
            self.metrics.register_outcomes.labels("invalid").inc()
            return
        aor = to_uri.user
        outcome = await self.auth.check(request, peer, proxy=False, hint_user=aor)
        if outcome.drop:
            self.metrics.register_outcomes.labels("throttled").inc()
            return  # leave the transaction unanswered; it ends by itself
        if not outcome.ok:
            self._answer(txn_id, request, outcome.status, headers=outcome.headers)
            self.metrics.register_outcomes.labels(
                "challenged" if outcome.status in (401, 407) else "forbidden"
            ).inc()
            return
        if outcome.username != aor:
            self._answer(txn_id, request, 403, "Not allowed to register this number")
            self.metrics.register_outcomes.labels("forbidden").inc()
            return
        lock = self._locks.setdefault(aor, asyncio.Lock())
        async with lock:
            now = self.clock()
            plan = plan_register(aor, request, peer, self.location.bindings(aor), now, self.policy)
            if plan.status != 200:
                self._answer(txn_id, request, plan.status, plan.reason, plan.headers)
                self.metrics.register_outcomes.labels("rejected").inc()
                return
            if plan.upsert or plan.remove:
                await self.location.apply(aor, plan.upsert, plan.remove, now)
                current = self.location.lookup(aor, now)
                if self.bus is not None:
                    self.bus.publish(
                        "registration.changed",
                        {"extension": aor, "registered": bool(current), "contacts": len(current)},
                    )
            self.metrics.registrations.set(self.location.count())
            headers = contact_headers(self.location.lookup(aor, now), now)
            headers.append(("Date", email.utils.formatdate(now, usegmt=True)))
            self._answer(txn_id, request, 200, headers=headers)
            self.metrics.register_outcomes.labels("ok").inc()
            log.info(
                "registered",
                extra={
                    "call_id": request.call_id,
                    "aor": aor,
                    "contacts": len(headers) - 1,
                    "peer": f"{peer.host}:{peer.port}/{peer.transport}",
                },
            )
        if not lock.locked():
            self._locks.pop(aor, None)

    async def purge(self) -> None:
        removed = await self.location.purge_expired(self.clock())
        if removed:
            self.metrics.registrations.set(self.location.count())
