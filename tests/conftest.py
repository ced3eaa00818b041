"""Shared fixtures: a real Växla node, PostgreSQL databases, real peers."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import VaxlaProcess

PG_ADMIN_URL = os.environ.get(
    "VAXLA_TEST_PG_URL", "postgresql://postgres:postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[VaxlaProcess]:
    """A running ``vaxla serve`` on free loopback ports with an empty database."""
    proc = VaxlaProcess(tmp_path / "node")
    try:
        proc.start()
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def module_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VaxlaProcess]:
    """One running node shared by the tests of a module (they must not clash)."""
    proc = VaxlaProcess(tmp_path_factory.mktemp("node") / "node")
    try:
        proc.start()
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database, dropped afterwards."""
    import psycopg

    name = f"vaxla_test_{uuid.uuid4().hex[:12]}"
    admin = PG_ADMIN_URL
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = admin.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each storage test runs on the embedded default and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'vaxla.db'}"
    else:
        yield request.getfixturevalue("pg_url")
