"""One Växla node: SIP stack, registrar, B2BUA and the HTTP API on one loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Generator

import uvicorn
from sqlalchemy import select

from vaxla.api.app import ApiContext, create_app
from vaxla.api.auth import principal_dependency
from vaxla.api.tokens import TokenStore
from vaxla.config import Settings, is_loopback, split_host_port
from vaxla.demo import load_demo, load_demo_users
from vaxla.events import EventBus
from vaxla.features import Feature, NodeContext, load_features
from vaxla.metrics import Metrics
from vaxla.net.stack import SipStack
from vaxla.pbx.api import build_router as build_pbx_router
from vaxla.pbx.application import PbxApplication
from vaxla.pbx.b2bua import B2BUA
from vaxla.pbx.call_control import CallControl
from vaxla.pbx.cdr import CallRecordWriter
from vaxla.pbx.extensions import ExtensionStore
from vaxla.pbx.location import LocationService
from vaxla.pbx.phone_auth import PhoneAuth
from vaxla.pbx.registrar import Registrar
from vaxla.pbx.registration import ExpiryPolicy
from vaxla.store.db import Database, migrate
from vaxla.store.models import NodeSecret
from vaxla.web.platform import WebPlatform

log = logging.getLogger("vaxla")


class _EmbeddedUvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: the node owns Ctrl-C."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


async def node_secret(db: Database, name: str) -> bytes:
    async with db.transaction() as s:
        row = await s.scalar(select(NodeSecret).where(NodeSecret.name == name))
        if row is None:
            row = NodeSecret(name=name, value=secrets.token_hex(32))
            s.add(row)
        return bytes.fromhex(row.value)


class VaxlaNode:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.bus = EventBus()
        self.db: Database | None = None
        self.stack: SipStack | None = None
        self.app: PbxApplication | None = None
        self.b2bua: B2BUA | None = None
        self.cdr: CallRecordWriter | None = None
        self.http: _EmbeddedUvicorn | None = None
        self.features: list[Feature] = []
        self.web: WebPlatform | None = None
        self._http_task: asyncio.Task[None] | None = None
        self._purge_task: asyncio.Task[None] | None = None
        self.http_port = 0

    async def start(self) -> None:
        s = self.settings
        s.data_dir.mkdir(parents=True, exist_ok=True)
        url = s.effective_database_url
        await asyncio.to_thread(migrate, url)
        self.db = db = Database(url)
        extensions = ExtensionStore(db, s.sip.realm)
        if s.demo:
            added = await load_demo(extensions)
            if added:
                log.info("demo municipality loaded", extra={"extensions": added})
        location = LocationService(db)
        restored = await location.load(time.time())
        self.metrics.registrations.set(restored)
        secret = await node_secret(db, "digest-nonce")
        auth = PhoneAuth(
            extensions,
            s.sip.realm,
            secret,
            s.sip.digest_algorithms,
            s.sip.nonce_ttl,
            s.sip.auth_failure_limit,
        )
        self.stack = stack = SipStack(self.metrics)
        sip_host, sip_port = split_host_port(s.sip.listen, 5060)
        await stack.start(sip_host, sip_port, s.sip.advertise)
        self.cdr = CallRecordWriter(db)
        self.cdr.start()
        policy = ExpiryPolicy(s.sip.min_expires, s.sip.max_expires, s.sip.default_expires)
        registrar = Registrar(stack, auth, location, policy, self.metrics)
        b2bua = B2BUA(
            stack,
            auth,
            extensions,
            location,
            self.cdr,
            self.metrics,
            no_answer_timeout=s.sip.no_answer_timeout,
            trusted_hosts=set(s.sip.trusted_peers),
        )
        self.app = PbxApplication(stack, registrar, b2bua)
        b2bua.bus = registrar.bus = self.bus
        self.b2bua = b2bua
        stack.app = self.app
        self._purge_task = asyncio.get_running_loop().create_task(self._purge(registrar))

        tokens = TokenStore(db)
        web_secret = await node_secret(db, "web-session")
        web = WebPlatform(s, db, self.bus, tokens, extensions, location, web_secret, time.time)
        self.web = web
        ctx = ApiContext(
            db,
            extensions,
            location,
            tokens,
            self.metrics,
            time.time,
            principal_dependency(tokens, web.sessions),
            self.bus,
        )
        node_ctx = NodeContext(
            settings=s,
            db=db,
            bus=self.bus,
            metrics=self.metrics,
            principal=ctx.principal,
            clock=time.time,
            services={
                "extensions": extensions,
                "location": location,
                "b2bua": b2bua,
                "stack": stack,
                "tokens": tokens,
            },
        )
        routers = [build_pbx_router(b2bua, CallControl(b2bua, time.time), ctx.principal, time.time)]
        for feature in load_features():
            await feature.start(node_ctx)
            self.features.append(feature)
            routers.extend(feature.routers())
        web.use_directory(node_ctx.services.get("directory"))
        routers.extend(web.routers(ctx.principal))
        if s.demo:
            await load_demo_users(web.users, node_ctx.services.get("directory"))
        ctx.authenticate_socket = web.authenticate_socket
        api = create_app(ctx, routers)
        web.install(api)
        http_host, http_port = split_host_port(s.http.listen, 8080)
        config = uvicorn.Config(
            api,
            host=http_host,
            port=http_port,
            log_config=None,
            lifespan="off",
            access_log=False,
            ws="websockets-sansio",
            ssl_certfile=str(s.http.tls_cert) if s.http.tls else None,
            ssl_keyfile=str(s.http.tls_key) if s.http.tls else None,
        )
        self.http = _EmbeddedUvicorn(config)
        self._http_task = asyncio.get_running_loop().create_task(self.http.serve())
        while not self.http.started:
            if self._http_task.done():
                self._http_task.result()
                raise RuntimeError("HTTP server stopped during start")
            await asyncio.sleep(0.02)
        for server in self.http.servers:
            for sock in server.sockets:
                self.http_port = sock.getsockname()[1]
        web.start()
        log.info(
            "Växla started",
            extra={
                "sip": f"{stack.host}:{stack.port} udp+tcp",
                "http": f"{http_host}:{self.http_port}",
                "database": db.engine.dialect.name,
                "registrations_restored": restored,
            },
        )
        if s.demo and not (is_loopback(sip_host) and is_loopback(http_host)):
            log.warning(
                "DEMO MODE ON A NON-LOOPBACK ADDRESS: the demo passwords are public "
                "(demo<extension>). Anyone who can reach this host can register as a demo "
                "phone and call. Use only on a closed network.",
                extra={"sip": s.sip.listen, "http": s.http.listen},
            )

    async def _purge(self, registrar: Registrar) -> None:
        while True:
            await asyncio.sleep(30)
            try:
                await registrar.purge()
            except Exception:
                log.exception("purging expired registrations failed")

    async def stop(self) -> None:
        if self._purge_task is not None:
            self._purge_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._purge_task
        if self.http is not None and self._http_task is not None:
            self.http.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await self._http_task
        if self.web is not None:
            await self.web.stop()
        for feature in reversed(self.features):
            try:
                await feature.stop()
            except Exception:
                log.exception("stopping feature %s failed", feature.name)
        if self.app is not None:
            await self.app.close()
        if self.stack is not None:
            await self.stack.close()
        if self.cdr is not None:
            await self.cdr.close()
        if self.db is not None:
            await self.db.close()
        log.info("Växla stopped")
