"""Typed settings for Växla.

Sources, lowest priority first: built-in defaults < TOML file (``--config``)
< environment variables ``VAXLA_*`` (nested with ``__``, e.g.
``VAXLA_SIP__REALM``) < command-line flags.
"""

from __future__ import annotations

import ipaddress
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

DIGEST_ALGORITHMS = ("MD5", "SHA-256")


def split_host_port(text: str, default_port: int) -> tuple[str, int]:
    """``"127.0.0.1:5060"`` -> ``("127.0.0.1", 5060)``; ``"[::1]:5060"`` works too."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") else default_port
        return host, port
    if text.count(":") == 1:
        host, port_text = text.split(":")
        return host, int(port_text)
    return text, default_port


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class SipSettings(BaseModel):
    listen: str = Field("127.0.0.1:5060", description="HOST:PORT for SIP over UDP and TCP.")
    advertise: str | None = Field(
        None,
        description="Address put in Via/Contact when listen is a wildcard (0.0.0.0).",
    )
    realm: str = Field("vaxla", description="Digest realm for phones.")
    digest_algorithms: list[str] = Field(
        default_factory=lambda: ["MD5"],
        description="Algorithms offered in challenges unless an extension says otherwise.",
    )
    nonce_ttl: float = Field(300.0, description="Seconds a digest nonce stays fresh.")
    min_expires: int = Field(60, description="Shortest registration accepted (423 below).")
    max_expires: int = Field(3600, description="Registrations longer than this are cut.")
    default_expires: int = 3600
    no_answer_timeout: float = Field(
        30.0, description="Seconds before an unanswered call gets 480."
    )
    trusted_peers: list[str] = Field(
        default_factory=list,
        description="Hosts (IP) whose INVITEs need no digest auth, e.g. a trunk.",
    )
    auth_failure_limit: int = Field(
        20, description="Failed auth attempts per source per minute before it is throttled."
    )

    @field_validator("digest_algorithms")
    @classmethod
    def _known_algorithms(cls, value: list[str]) -> list[str]:
        upper = [v.upper() for v in value]
        for v in upper:
            if v not in DIGEST_ALGORITHMS:
                raise ValueError(f"unknown digest algorithm {v!r}; use {DIGEST_ALGORITHMS}")
        return upper


class HttpSettings(BaseModel):
    listen: str = Field("127.0.0.1:8080", description="HOST:PORT of the web UI and REST API.")
    tls_cert: Path | None = Field(
        None, description="PEM certificate (chain): serve HTTPS, e.g. for use from outside (R37)."
    )
    tls_key: Path | None = Field(None, description="PEM private key of tls_cert.")
    cookie_secure: bool | None = Field(
        None, description="Mark session cookies Secure; default: when HTTPS is on."
    )
    session_idle_minutes: int = Field(480, description="A session ends after this idle time.")
    session_hours: int = Field(12, description="A session ends this long after sign-in.")
    signin_lock_after: int = Field(
        10, description="Wrong passwords in a row that lock an account for a while."
    )
    signin_lock_minutes: int = Field(15, description="How long a locked account stays locked.")
    signin_source_limit: int = Field(
        50, description="Failed sign-ins from one address within the window before it waits."
    )
    signin_source_window: int = Field(600, description="The per-address window, seconds.")

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None and self.tls_key is not None


class LogSettings(BaseModel):
    level: str = "INFO"
    format: str = Field("json", description="json or text")


class DirectorySettings(BaseModel):
    """The directory (people, search, diversion)."""

    memory_index: bool = Field(
        True,
        description="Answer searches from an in-memory index (1-2 KB per person, built at "
        "start; SQL until it is ready). false: every search in SQL.",
    )
    keypad_search_number: str | None = Field(
        "9005",
        description="Directory search from a phone's keypad: key the start of a name, #, "
        "hear the matches and their diversion, press a digit to be connected (empty: off).",
    )


class MediaSettings(BaseModel):
    """The media engine: RTP ports, anchoring, services on demo numbers."""

    address: str = Field(
        "127.0.0.1", description="IP address RTP sockets bind to and SDP advertises."
    )
    advertise: str | None = Field(
        None, description="Address put in SDP when ``address`` is a wildcard (0.0.0.0)."
    )
    port_min: int = Field(30000, description="Lowest RTP port (even; RTCP uses port + 1).")
    port_max: int = Field(39999, description="Highest RTP/RTCP port.")
    ptime: int = Field(20, description="Packetisation time Växla sends at: 20 or 30 ms.")
    anchor: str = Field(
        "never",
        description='"never": bridged calls send media directly between phones; '
        '"always": media of every bridged call runs through Växla.',
    )
    fast_relay: bool = Field(
        True,
        description="Relay anchored calls' RTP in the C fast path (vaxla.media._fastrelay); "
        "false, or the extension not built: relay in Python.",
    )
    jitter_delay_ms: int = Field(40, description="Playout delay of received audio.")
    echo_number: str | None = Field("9000", description="Echo test (empty: off).")
    readback_number: str | None = Field(
        "9001", description="Reads back the caller's extension in Swedish (empty: off)."
    )
    conference_number: str | None = Field("9002", description="Conference room (empty: off).")
    listen_number: str | None = Field(
        "9003", description="Listen-in on an anchored call: dial, key the extension, #."
    )
    whisper_number: str | None = Field(
        "9004", description="Whisper to one party of an anchored call (empty: off)."
    )
    monitor_roles: list[str] = Field(
        ["supervisor", "operator"],
        description="Roles whose users may listen in and whisper, from their own extension.",
    )
    voice: str = Field("sv", description="espeak-ng voice for generated prompts.")
    rtcp_interval: float = Field(5.0, description="Seconds between RTCP reports.")

    @field_validator("monitor_roles")
    @classmethod
    def _known_roles(cls, value: list[str]) -> list[str]:
        from vaxla.api.tokens import ROLES  # here: the settings load before the API

        unknown = sorted(set(value) - set(ROLES))
        if unknown:
            raise ValueError(f"media.monitor_roles: unknown roles {unknown} (known: {ROLES})")
        return value

    @field_validator("anchor")
    @classmethod
    def _anchor_mode(cls, value: str) -> str:
        if value not in ("never", "always"):
            raise ValueError('media.anchor is "never" or "always"')
        return value

    @field_validator("ptime")
    @classmethod
    def _ptime(cls, value: int) -> int:
        if value not in (20, 30):
            raise ValueError("media.ptime is 20 or 30")
        return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="VAXLA_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    data_dir: Path = Field(Path("data"), description="Where the database and state live.")
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL; default: SQLite file vaxla.db in data_dir. "
        "postgresql://user@host/db selects PostgreSQL.",
    )
    demo: bool = Field(False, description="Load the demo municipality on first start.")
    sip: SipSettings = Field(default_factory=lambda: SipSettings())
    http: HttpSettings = Field(default_factory=lambda: HttpSettings())
    log: LogSettings = Field(default_factory=lambda: LogSettings())
    media: MediaSettings = Field(default_factory=lambda: MediaSettings())
    directory: DirectorySettings = Field(default_factory=lambda: DirectorySettings())

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # init kwargs carry CLI flags (highest), then the environment, then the
        # TOML file, which load_settings passes as the lowest-priority source.
        return (init_settings, env_settings, _TomlSource(settings_cls))

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'vaxla.db').resolve()}"


_toml_data: dict[str, Any] = {}


class _TomlSource(PydanticBaseSettingsSource):
    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return _toml_data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_toml_data)


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build settings from the layered sources.

    ``overrides`` are CLI flags; nested keys are given as dicts
    (``sip={"listen": "127.0.0.1:5070"}``) and merged with the lower layers
    rather than replacing the whole section.
    """
    global _toml_data
    file_data: dict[str, Any] = {}
    if config_file is not None:
        with open(config_file, "rb") as fh:
            file_data = tomllib.load(fh)
    _toml_data = file_data
    try:
        # Build once without overrides so nested sections from file/env are kept,
        # then apply the CLI overrides on top of that (deep merge).
        base = Settings()
        if not overrides:
            return base
        merged = _deep_merge(
            base.model_dump(), {k: v for k, v in overrides.items() if v is not None}
        )
        return Settings.model_validate(merged)
    finally:
        _toml_data = {}
