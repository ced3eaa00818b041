"""Routes transaction-layer events to the registrar and the B2BUA."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from vaxla.net.stack import SipStack
from vaxla.pbx.b2bua import B2BUA, Call
from vaxla.pbx.dialog import ALLOW
from vaxla.pbx.registrar import Registrar
from vaxla.sip.events import (
    AckReceived,
    AckTimeout,
    CancelReceived,
    Event,
    RequestReceived,
    ResponseReceived,
    TransactionTimeout,
)
from vaxla.sip.message import Request, make_response, new_tag

log = logging.getLogger("vaxla.pbx")

KNOWN_METHODS = frozenset(
    {
        "INVITE",
        "ACK",
        "CANCEL",
        "BYE",
        "OPTIONS",
        "REGISTER",
        "INFO",
        "UPDATE",
        "PRACK",
        "SUBSCRIBE",
        "NOTIFY",
        "REFER",
        "MESSAGE",
        "PUBLISH",
    }
)
IN_DIALOG_METHODS = frozenset({"INVITE", "BYE", "INFO", "UPDATE", "NOTIFY", "REFER", "MESSAGE"})


class PbxApplication:
    def __init__(self, stack: SipStack, registrar: Registrar, b2bua: B2BUA) -> None:
        self.stack = stack
        self.registrar = registrar
        self.b2bua = b2bua
        self._tasks: set[asyncio.Task[None]] = set()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("request handling failed", exc_info=task.exception())

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _reply(
        self,
        txn_id: str,
        request: Request,
        status: int,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        self.stack.send_response(
            txn_id, make_response(request, status, to_tag=new_tag(), headers=headers or ())
        )

    def handle_event(self, event: Event) -> None:
        """Hand ``event`` to the registrar or the B2BUA.  Should that fail
        for a call's event, the call is released (500 to a caller still
        waiting, BYE on both sides of an answered call) rather than left
        hanging until a timer notices; the error is logged with its call."""
        call = self._call_of(event)
        try:
            self._handle(event)
        except Exception:
            if call is None:
                raise
            log.exception(
                "handling %s failed: call released",
                type(event).__name__,
                extra={"call_id": call.a_dialog.call_id},
            )
            self.b2bua.release_after_error(call)

    def _call_of(self, event: Event) -> Call | None:
        """The live call ``event`` belongs to, if any."""
        b2bua = self.b2bua
        if isinstance(event, ResponseReceived | TransactionTimeout) and event.txn_id is not None:
            fork = b2bua.forks.get(event.txn_id)
            if fork is not None:
                return fork[0]
            forward = b2bua.forwards.get(event.txn_id)
            return forward.call if forward is not None else None
        if isinstance(event, RequestReceived | AckReceived):
            found = b2bua.dialog_of(event.request)
            return found[0] if found is not None else None
        if isinstance(event, CancelReceived) and event.invite_txn_id is not None:
            return b2bua.calls_by_a_txn.get(event.invite_txn_id)
        return None

    def _handle(self, event: Event) -> None:
        if isinstance(event, RequestReceived):
            self._request(event.txn_id, event.request, event)
        elif isinstance(event, ResponseReceived):
            b2bua = self.b2bua
            if event.txn_id is None:
                if 200 <= event.response.status < 300:
                    b2bua.on_stray_2xx(event.response)
            elif event.txn_id in b2bua.forks:
                call, leg = b2bua.forks[event.txn_id]
                b2bua.on_fork_response(call, leg, event.response)
            elif event.txn_id in b2bua.forwards:
                b2bua.on_forward_response(event.txn_id, event.response)
            elif event.txn_id in b2bua.watchers:
                on_response, _ = b2bua.watchers[event.txn_id]
                if event.response.status >= 200:
                    del b2bua.watchers[event.txn_id]
                on_response(event.response)
        elif isinstance(event, AckReceived):
            self.b2bua.on_ack(event.request)
        elif isinstance(event, CancelReceived):
            if event.invite_txn_id is not None:
                self.b2bua.on_cancel(event.invite_txn_id)
        elif isinstance(event, TransactionTimeout):
            found = self.b2bua.forks.get(event.txn_id)
            watcher = self.b2bua.watchers.pop(event.txn_id, None)
            if found is not None:
                self.b2bua.on_fork_timeout(*found)
            elif watcher is not None:
                watcher[1]()
            else:
                self.b2bua.on_forward_timeout(event.txn_id)
        elif isinstance(event, AckTimeout):
            self.b2bua.on_a_ack_timeout(event.txn_id)

    def _request(self, txn_id: str, request: Request, event: RequestReceived) -> None:
        method = request.method
        if method not in KNOWN_METHODS:
            self._reply(txn_id, request, 501, [("Allow", ALLOW)])
            return
        if request.to.tag is not None and method in IN_DIALOG_METHODS:
            found = self.b2bua.dialog_of(request)
            if found is None:
                self._reply(txn_id, request, 481)
            else:
                self.b2bua.on_in_dialog(txn_id, request, *found)
            return
        if method == "REGISTER":
            self._spawn(self.registrar.handle(txn_id, request, event.peer))
        elif method == "INVITE":
            self._spawn(self.b2bua.on_invite(txn_id, request, event.peer))
        elif method == "OPTIONS":
            self._reply(
                txn_id,
                request,
                200,
                [
                    ("Allow", ALLOW),
                    ("Accept", "application/sdp"),
                    ("Accept-Language", "sv, en"),
                    ("Supported", ""),
                ],
            )
        elif method == "BYE":
            self._reply(txn_id, request, 481)
        else:
            self._reply(txn_id, request, 405, [("Allow", ALLOW)])
