"""Fast tests of the web platform's parts: texts, sign-in limits, event filter, storage."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import inspect

from vaxla.api.auth import Principal
from vaxla.auth.passwords import PasswordHashing
from vaxla.auth.sessions import SessionStore
from vaxla.auth.signin import AccountLocked, SignIn, SignInFailed, SourceThrottle, TooManyAttempts
from vaxla.auth.users import UserStore
from vaxla.events import BusEvent
from vaxla.i18n import LANGUAGES, catalogue, t, table
from vaxla.store.db import Database, migrate, sync_url
from vaxla.web.events import visible

WEB = Path(__file__).resolve().parents[2] / "src" / "vaxla" / "web"
FAST = PasswordHashing(time_cost=1, memory_cost=1024)


# ---------------------------------------------------------------------- texts (R23)


def test_every_text_has_swedish_and_english() -> None:
    for key, texts in table().items():
        assert set(texts) == set(LANGUAGES), key
        assert texts["sv"].strip() and texts["en"].strip(), key
    assert t("nav.console") == "Konsol" and t("nav.console", "en") == "Console"
    assert t("console.hits", "sv", n=3) == "3 träffar"
    assert catalogue("xx") == catalogue("sv")  # unknown language: Swedish


def test_every_key_used_by_templates_and_scripts_is_in_the_table() -> None:
    used: set[str] = set()
    for path in (WEB / "templates").glob("*.html"):
        used |= set(re.findall(r"""\bt\(\s*["']([a-z0-9_.\-]+)["']""", path.read_text()))
    for path in (WEB / "static").glob("*.js"):
        used |= set(re.findall(r"""\bt\(\s*["']([a-z0-9_.\-]+)["']""", path.read_text()))
    dynamic = {
        "phone.": ["free", "ringing", "busy", "unregistered", "unknown"],
        "phone.kind.": ["extension", "direct", "mobile"],
        "live.": ["connecting", "live", "offline"],
        "level.": ["1", "2", "3", "4"],
        "console.call_": ["ringing", "answered"],
        "forwarding.": ["always", "busy", "no-answer", "unreachable"],
        "role.": [
            "admin",
            "directory-admin",
            "directory-editor",
            "supervisor",
            "operator",
            "agent",
            "employee",
        ],
    }
    used = {k for k in used if not k.endswith(".")}  # prefixes of the dynamic keys below
    used |= {prefix + rest for prefix, rests in dynamic.items() for rest in rests}
    assert len(used) > 100
    assert sorted(used - set(table())) == []


# ---------------------------------------------------------------------- sign-in limits


def test_source_throttle_counts_per_address_in_a_window() -> None:
    now = [1000.0]
    throttle = SourceThrottle(limit=3, window=60, clock=lambda: now[0])
    for _ in range(3):
        throttle.failed("10.0.0.1")
    assert throttle.blocked("10.0.0.1") and not throttle.blocked("10.0.0.2")
    now[0] += 61
    assert not throttle.blocked("10.0.0.1")


async def test_account_lock_and_expiry(database_url: str) -> None:
    migrate(database_url)
    db = Database(database_url)
    now = [1_800_000_000.0]
    clock = lambda: now[0]  # noqa: E731
    users = UserStore(db, FAST, clock)
    sessions = SessionStore(db, b"k" * 32, clock=clock)
    signin = SignIn(
        db,
        users,
        sessions,
        FAST,
        lock_after=10,
        lock_for=timedelta(minutes=15),
        source_limit=100,
        clock=clock,
    )
    try:
        await users.add("anna", password="right-pass-1", roles=["operator", "employee"])
        await users.add("bertil", password="right-pass-2", roles=["employee"])
        for _ in range(10):
            with pytest.raises(SignInFailed):
                await signin.with_password("anna", "wrong", "10.0.0.9")
        with pytest.raises(AccountLocked):
            await signin.with_password("anna", "right-pass-1", "10.0.0.9")
        done = await signin.with_password("bertil", "right-pass-2", "10.0.0.9")
        p = await sessions.principal_for(done.token)
        assert p is not None and p.subject == "bertil" and p.roles == {"employee"}
        now[0] += 15 * 60 + 1  # the lock ends by itself
        done = await signin.with_password("anna", "right-pass-1", "10.0.0.9")
        p = await sessions.principal_for(done.token)
        assert p is not None and p.role == "operator" and p.has("employee", "operator")
        assert sessions.check_csrf(done.token, sessions.csrf_for(done.token))
        assert not sessions.check_csrf(done.token, sessions.csrf_for("other"))
        # Idle sessions end; revoked ones at once.
        now[0] += 9 * 3600
        assert await sessions.principal_for(done.token) is None
    finally:
        await db.close()


async def test_per_source_throttle_refuses_before_checking_passwords(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'v.db'}"
    migrate(url)
    db = Database(url)
    users = UserStore(db, FAST)
    signin = SignIn(db, users, SessionStore(db, b"k" * 32), FAST, source_limit=3)
    try:
        await users.add("carl", password="right-pass-3", roles=["employee"])
        for name in ("x1", "x2", "x3"):
            with pytest.raises(SignInFailed):
                await signin.with_password(name, "guess", "192.0.2.7")
        with pytest.raises(TooManyAttempts):
            await signin.with_password("carl", "right-pass-3", "192.0.2.7")
        assert (await signin.with_password("carl", "right-pass-3", "192.0.2.8")).token
    finally:
        await db.close()


def test_migration_creates_the_web_tables(database_url: str) -> None:
    migrate(database_url)
    from sqlalchemy import create_engine

    engine = create_engine(sync_url(database_url))
    try:
        names = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {
        "auth_users",
        "auth_user_roles",
        "auth_sessions",
        "call_forwarding",
        "voicemail_pins",
    } <= names


# ---------------------------------------------------------------------- event filter


def _ev(topic: str, **data: object) -> BusEvent:
    return BusEvent(1, topic, dict(data))


def test_event_filter_by_role() -> None:
    operator = Principal.of("tel", {"operator"}, extension="2001")
    employee = Principal.of("karl", {"employee"}, extension="2010")
    admin = Principal("api", "admin")
    call = _ev("call.state", call_id="c1", caller="2010", callee="2001", state="ringing")
    other_call = _ev("call.state", call_id="c2", caller="2020", callee="2030", state="ringing")
    div = _ev("diversion.changed", person_id=7, diversion={"reason": "lunch", "set_by": "tel"})
    assert visible(call, operator) is not None and visible(other_call, operator) is not None
    assert visible(call, employee) is not None  # their own extension's call
    assert visible(other_call, employee) is None
    assert visible(div, operator) == div.data
    assert visible(div, employee) == {"person_id": 7}
    assert visible(_ev("message.left", person_id=7), employee) is None
    assert visible(_ev("phone.state", extension="2001", state="busy"), employee) is not None
    assert visible(_ev("media.recording"), operator) is None
    assert visible(_ev("media.recording"), admin) == {}
