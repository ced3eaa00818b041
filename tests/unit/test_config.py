"""Settings layering: defaults < TOML file < VAXLA_* environment < CLI flags."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from vaxla.config import load_settings, split_host_port


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VAXLA_SIP__LISTEN", raising=False)
    s = load_settings()
    assert s.sip.listen == "127.0.0.1:5060" and s.http.listen == "127.0.0.1:8080"
    assert s.sip.digest_algorithms == ["MD5"]
    assert s.effective_database_url.startswith("sqlite:///")
    assert s.effective_database_url.endswith("data/vaxla.db")


def test_layers_override_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "vaxla.toml"
    cfg.write_text(
        'data_dir = "/srv/vaxla"\n'
        "[sip]\n"
        'listen = "127.0.0.1:5070"\n'
        'realm = "kommun.example"\n'
        "no_answer_timeout = 25\n"
        "[http]\n"
        'listen = "127.0.0.1:8081"\n'
    )
    s = load_settings(cfg)
    assert s.sip.listen == "127.0.0.1:5070" and s.sip.realm == "kommun.example"
    assert s.data_dir == Path("/srv/vaxla")

    monkeypatch.setenv("VAXLA_SIP__REALM", "env.example")
    monkeypatch.setenv("VAXLA_SIP__NO_ANSWER_TIMEOUT", "12")
    s = load_settings(cfg)
    assert s.sip.realm == "env.example" and s.sip.no_answer_timeout == 12
    assert s.sip.listen == "127.0.0.1:5070"  # the file still counts for the rest

    s = load_settings(cfg, sip={"listen": "127.0.0.1:5999"}, data_dir=tmp_path)
    assert s.sip.listen == "127.0.0.1:5999"  # CLI beats everything
    assert s.sip.realm == "env.example"  # but merges with the lower layers
    assert s.http.listen == "127.0.0.1:8081"
    assert s.data_dir == tmp_path


def test_bad_values_are_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[sip]\ndigest_algorithms = ["MD4"]\n')
    with pytest.raises(ValidationError):
        load_settings(cfg)
    cfg.write_text("no_such_setting = 1\n")
    with pytest.raises(ValidationError):
        load_settings(cfg)


def test_split_host_port() -> None:
    assert split_host_port("127.0.0.1:5070", 5060) == ("127.0.0.1", 5070)
    assert split_host_port("127.0.0.1", 5060) == ("127.0.0.1", 5060)
    assert split_host_port("[::1]:5061", 5060) == ("::1", 5061)
    assert split_host_port("[::1]", 5060) == ("::1", 5060)


def test_directory_search_index_can_be_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().directory.memory_index is True
    monkeypatch.setenv("VAXLA_DIRECTORY__MEMORY_INDEX", "false")
    assert load_settings().directory.memory_index is False


def test_monitor_roles_are_known_roles(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().media.monitor_roles == ["supervisor", "operator"]
    monkeypatch.setenv("VAXLA_MEDIA__MONITOR_ROLES", '["supervisor"]')
    assert load_settings().media.monitor_roles == ["supervisor"]
    monkeypatch.setenv("VAXLA_MEDIA__MONITOR_ROLES", '["chef"]')
    with pytest.raises(ValidationError, match="unknown roles"):
        load_settings()
