"""The ``vaxla`` command."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

from vaxla import __version__
from vaxla.api.tokens import TokenStore
from vaxla.config import Settings, load_settings
from vaxla.errors import VaxlaError
from vaxla.logs import setup_logging
from vaxla.pbx.extensions import ExtensionStore
from vaxla.store.db import Database, migrate


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="TOML configuration file")
    p.add_argument("--data-dir", type=Path, help="data directory (default ./data)")
    p.add_argument("--database-url", help="SQLAlchemy URL, e.g. postgresql://user@host/db")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vaxla", description="Växla communications platform")
    parser.add_argument("--version", action="version", version=f"vaxla {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the SIP server, registrar, B2BUA and web API")
    _common(serve)
    serve.add_argument("--sip-listen", metavar="HOST:PORT", help="SIP UDP+TCP address")
    serve.add_argument("--http-listen", metavar="HOST:PORT", help="web UI and REST API address")
    serve.add_argument(
        "--demo",
        action="store_true",
        default=None,
        help="load the demo municipality (extensions 1000-1049) on first start",
    )
    serve.add_argument("--log-format", choices=["json", "text"])
    serve.add_argument("--log-level")

    ext = sub.add_parser("extension", help="manage extensions")
    ext_sub = ext.add_subparsers(dest="action", required=True)
    add = ext_sub.add_parser("add", help="add an extension")
    _common(add)
    add.add_argument("number")
    add.add_argument("--name", required=True)
    add.add_argument("--password", required=True)
    add.add_argument("--digest", help="digest algorithms for this phone, e.g. MD5 or MD5,SHA-256")
    lst = ext_sub.add_parser("list", help="list extensions")
    _common(lst)
    lst.add_argument("--json", action="store_true", help="print JSON")
    rm = ext_sub.add_parser("remove", help="remove an extension")
    _common(rm)
    rm.add_argument("number")

    tok = sub.add_parser("token", help="manage REST API tokens")
    tok_sub = tok.add_subparsers(dest="action", required=True)
    create = tok_sub.add_parser("create", help="create a token (printed once)")
    _common(create)
    create.add_argument("--name", default="api")
    create.add_argument("--role", default="admin")
    create.add_argument("--days", type=int, help="expire after this many days")
    tlist = tok_sub.add_parser("list", help="list tokens (not their secrets)")
    _common(tlist)

    usr = sub.add_parser("user", help="manage people who sign in to the web UI")
    usr_sub = usr.add_subparsers(dest="action", required=True)
    uadd = usr_sub.add_parser("add", help="add a user")
    _common(uadd)
    uadd.add_argument("username")
    uadd.add_argument("--role", action="append", required=True, help="a role (repeat for several)")
    uadd.add_argument("--password", required=True)
    uadd.add_argument("--name", default="", help="display name")
    uadd.add_argument("--extension", help="the user's own extension")
    uadd.add_argument("--language", choices=["sv", "en"], default="sv")
    ulist = usr_sub.add_parser("list", help="list users and their roles")
    _common(ulist)

    mig = sub.add_parser("migrate", help="bring the database schema up to date")
    _common(mig)
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {
        "data_dir": getattr(args, "data_dir", None),
        "database_url": getattr(args, "database_url", None),
        "demo": getattr(args, "demo", None),
    }
    sip_listen = getattr(args, "sip_listen", None)
    if sip_listen:
        overrides["sip"] = {"listen": sip_listen}
    http_listen = getattr(args, "http_listen", None)
    if http_listen:
        overrides["http"] = {"listen": http_listen}
    log: dict[str, str] = {}
    if getattr(args, "log_format", None):
        log["format"] = args.log_format
    if getattr(args, "log_level", None):
        log["level"] = args.log_level
    if log:
        overrides["log"] = log
    return load_settings(args.config, **overrides)


async def _with_db(settings: Settings, work: Callable[[Database], Awaitable[int]]) -> int:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    url = settings.effective_database_url
    migrate(url)
    db = Database(url)
    try:
        return await work(db)
    finally:
        await db.close()


async def _serve(settings: Settings) -> int:
    from vaxla.server import VaxlaNode

    node = VaxlaNode(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await node.start()
        # Long-lived state (settings, modules, caches) is frozen out of the
        # cyclic GC, and young collections run less often: a busy node
        # allocates many short-lived message objects, and full collections
        # over everything otherwise cost a noticeable share of the CPU.
        gc.collect()
        gc.freeze()
        gc.set_threshold(20_000, 20, 50)
        await stop.wait()
    finally:
        await node.stop()
    return 0


def _run_loop(coro: Coroutine[Any, Any, int]) -> int:
    """Run the node on uvloop when it is installed (it is a dependency on
    Linux), else on the standard asyncio loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = settings_from(args)
    except (OSError, ValueError) as exc:
        print(f"vaxla: configuration error: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log.level, settings.log.format)
    try:
        if args.command == "serve":
            return _run_loop(_serve(settings))
        return asyncio.run(_dispatch(args, settings))
    except VaxlaError as exc:
        print(f"vaxla: {exc.message} ({exc.error_id})", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


async def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    realm = settings.sip.realm

    async def ext_add(db: Database) -> int:
        algs = args.digest.split(",") if args.digest else None
        info = await ExtensionStore(db, realm).add(args.number, args.name, args.password, algs)
        print(f"added extension {info.number} ({info.display_name})")
        return 0

    async def ext_list(db: Database) -> int:
        items = await ExtensionStore(db, realm).list()
        if args.json:
            print(
                json.dumps(
                    [
                        {
                            "number": e.number,
                            "name": e.display_name,
                            "digest_algorithms": list(e.digest_algorithms),
                            "enabled": e.enabled,
                        }
                        for e in items
                    ],
                    ensure_ascii=False,
                )
            )
        else:
            for e in items:
                print(f"{e.number}\t{e.display_name}")
        return 0

    async def ext_remove(db: Database) -> int:
        from vaxla.pbx.forwarding_store import ForwardingStore

        number = args.number
        await ExtensionStore(db, realm).remove(number)
        # Its call forwarding and ring time, and others' forwarding to it (a
        # running node sees this within seconds; see ForwardingStore.forget_extension).
        changed = await ForwardingStore(db).forget_extension(number, actor="cli")
        print(f"removed extension {number}")
        for other in changed:
            if other != number:
                print(f"removed call forwarding of {other} to {number}")
        return 0

    async def token_create(db: Database) -> int:
        token = await TokenStore(db).create(args.name, args.role, args.days)
        print(token)
        return 0

    async def token_list(db: Database) -> int:
        for t in await TokenStore(db).list():
            expires = t.expires_at.isoformat() if t.expires_at else "never"
            print(f"{t.id}\t{t.name}\t{t.role}\texpires {expires}")
        return 0

    async def user_add(db: Database) -> int:
        from vaxla.auth.passwords import PasswordHashing
        from vaxla.auth.users import UserStore

        roles = [r for item in args.role for r in item.split(",") if r]
        info = await UserStore(db, PasswordHashing()).add(
            args.username,
            password=args.password,
            roles=roles,
            display_name=args.name,
            extension=args.extension,
            language=args.language,
            actor="cli",
        )
        print(f"added user {info.username} ({', '.join(info.roles)})")
        return 0

    async def user_list(db: Database) -> int:
        from vaxla.auth.passwords import PasswordHashing
        from vaxla.auth.users import UserStore

        for u in await UserStore(db, PasswordHashing()).list():
            print(f"{u.id}\t{u.username}\t{','.join(u.roles)}\t{u.extension or '-'}")
        return 0

    async def noop(db: Database) -> int:
        return 0

    actions: dict[tuple[str, str | None], Callable[[Database], Awaitable[int]]] = {
        ("extension", "add"): ext_add,
        ("extension", "list"): ext_list,
        ("extension", "remove"): ext_remove,
        ("token", "create"): token_create,
        ("token", "list"): token_list,
        ("user", "add"): user_add,
        ("user", "list"): user_list,
        ("migrate", None): noop,
    }
    return await _with_db(settings, actions[(args.command, getattr(args, "action", None))])


if __name__ == "__main__":
    sys.exit(main())
