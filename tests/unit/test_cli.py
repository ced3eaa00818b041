"""The vaxla command: extensions and tokens from the shell."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def vaxla(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vaxla.cli", *args], capture_output=True, text=True, timeout=60
    )


def test_extension_add_list_remove(tmp_path: Path) -> None:
    d = ["--data-dir", str(tmp_path)]
    r = vaxla("extension", "add", "1234", "--name", "Märta Ölund", "--password", "hemligt1", *d)
    assert r.returncode == 0, r.stderr
    r = vaxla("extension", "add", "1234", "--name", "Dup", "--password", "hemligt1", *d)
    assert r.returncode == 1 and "extension-exists" in r.stderr
    assert "Traceback" not in r.stderr
    listed = json.loads(vaxla("extension", "list", "--json", *d).stdout)
    assert listed == [
        {"number": "1234", "name": "Märta Ölund", "digest_algorithms": [], "enabled": True}
    ]
    assert vaxla("extension", "remove", "1234", *d).returncode == 0
    r = vaxla("extension", "remove", "1234", *d)
    assert r.returncode == 1 and "extension-not-found" in r.stderr
    assert (tmp_path / "vaxla.db").exists()


def test_config_file_and_bad_config(tmp_path: Path) -> None:
    cfg = tmp_path / "v.toml"
    cfg.write_text(f'data_dir = "{tmp_path / "from-file"}"\n')
    r = vaxla(
        "extension", "add", "2000", "--name", "A", "--password", "hemligt1", "--config", str(cfg)
    )
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "from-file" / "vaxla.db").exists()
    cfg.write_text("[sip]\nrealm = 5\nbogus = 1\n")
    r = vaxla("extension", "list", "--config", str(cfg))
    assert r.returncode == 2 and "configuration error" in r.stderr


def test_token_create_prints_a_secret_once(tmp_path: Path) -> None:
    d = ["--data-dir", str(tmp_path)]
    token = vaxla("token", "create", "--name", "ci", "--days", "1", *d).stdout.strip()
    assert token.startswith("vx_") and len(token) > 30
    listed = vaxla("token", "list", *d).stdout
    assert "ci" in listed and token not in listed


async def test_extension_remove_forgets_its_call_forwarding(tmp_path: Path) -> None:
    from vaxla.pbx.forwarding import ForwardingRule, ForwardKind
    from vaxla.pbx.forwarding_store import ForwardingStore
    from vaxla.store.db import Database

    d = ["--data-dir", str(tmp_path)]
    for number in ("1234", "1235"):
        r = vaxla("extension", "add", number, "--name", "X", "--password", "hemligt1", *d)
        assert r.returncode == 0, r.stderr
    db = Database(f"sqlite:///{tmp_path / 'vaxla.db'}")
    try:
        store = ForwardingStore(db)
        always, busy = ForwardKind.ALWAYS, ForwardKind.BUSY
        await store.replace("1234", [ForwardingRule(always, "1235")], 40, actor="t")
        await store.replace(
            "1235",
            [ForwardingRule(busy, "1234"), ForwardingRule(always, "+46701234567")],
            actor="t",
        )
        r = vaxla("extension", "remove", "1234", *d)
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines() == [
            "removed extension 1234",
            "removed call forwarding of 1235 to 1234",
        ]
        assert "1234" not in await ForwardingStore(db).table()
        left = (await store.get("1235")).settings.rules
        assert left == (ForwardingRule(always, "+46701234567"),)
    finally:
        await db.close()
