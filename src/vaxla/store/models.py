"""SQLAlchemy 2 models: the durable state of a Växla node.

Every table here is created by an Alembic migration in ``migrations/``;
change a model only together with a new revision.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; store UTC-aware datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class Extension(Base):
    """A number a phone registers as and is called on."""

    __tablename__ = "extensions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    realm: Mapped[str] = mapped_column(String(100))
    # HA1 per algorithm: a database leak does not reveal the password.
    ha1_md5: Mapped[str] = mapped_column(String(64))
    ha1_sha256: Mapped[str] = mapped_column(String(64))
    # Comma-separated algorithms offered to this device; empty = server default.
    digest_algorithms: Mapped[str] = mapped_column(String(40), default="")
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Binding(Base):
    """One registered contact of an extension (RFC 3261 §10 location service)."""

    __tablename__ = "bindings"
    __table_args__ = (UniqueConstraint("aor", "contact_uri"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    aor: Mapped[str] = mapped_column(
        String(32), ForeignKey("extensions.number", ondelete="CASCADE"), index=True
    )
    contact_uri: Mapped[str] = mapped_column(String(500))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    call_id: Mapped[str] = mapped_column(String(200))
    cseq: Mapped[int] = mapped_column(Integer)
    q: Mapped[str | None] = mapped_column(String(8), nullable=True)
    # Where the REGISTER really came from: requests go back there (NAT, RFC 3581).
    transport: Mapped[str] = mapped_column(String(8))
    source_host: Mapped[str] = mapped_column(String(64))
    source_port: Mapped[int] = mapped_column(Integer)
    user_agent: Mapped[str] = mapped_column(String(200), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CallRecord(Base):
    """What happened to one call (caller, callee, times, result)."""

    __tablename__ = "call_records"
    __table_args__ = (Index("ix_call_records_started_at", "started_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[str] = mapped_column(String(200), index=True)
    caller: Mapped[str] = mapped_column(String(64))
    callee: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # answered | busy | no-answer | cancelled | not-found | rejected | failed
    result: Mapped[str] = mapped_column(String(20))
    sip_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    hangup_by: Mapped[str | None] = mapped_column(String(10), nullable=True)  # caller | callee
    # Call forwarding: the number dialled whose forwarding sent the call to
    # ``callee``, and the kind of the last step (always | busy | no-answer | unreachable).
    forwarded_from: Mapped[str | None] = mapped_column(String(64), nullable=True)
    forward_kind: Mapped[str | None] = mapped_column(String(20), nullable=True)


class ApiToken(Base):
    """A bearer token for the REST API; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class NodeSecret(Base):
    """Per-installation secrets (e.g. the digest nonce key), shared by all nodes."""

    __tablename__ = "node_secrets"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
