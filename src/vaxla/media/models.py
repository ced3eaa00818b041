"""Tables of the media engine: recordings and per-leg media quality."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from vaxla.store.models import Base, UTCDateTime


class Recording(Base):
    """A call recording on disk; the row is written when recording starts."""

    __tablename__ = "media_recordings"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    call_id: Mapped[str] = mapped_column(String(200), index=True)
    caller: Mapped[str] = mapped_column(String(64))
    callee: Mapped[str] = mapped_column(String(64))
    mode: Mapped[str] = mapped_column(String(10))  # stereo | mono
    path: Mapped[str] = mapped_column(String(500))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    duration_s: Mapped[float | None] = mapped_column(Float, nullable=True)


class MediaQuality(Base):
    """RTP figures of one leg of a call, written when its media closes.

    ``leg`` is "a" (caller side) or "b" (callee side), or "service"."""

    __tablename__ = "media_quality"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[str] = mapped_column(String(200), index=True)
    leg: Mapped[str] = mapped_column(String(10))
    packets_received: Mapped[int] = mapped_column(Integer)
    packets_lost: Mapped[int] = mapped_column(Integer)
    loss_percent: Mapped[float] = mapped_column(Float)
    jitter_ms: Mapped[float] = mapped_column(Float)
    packets_sent: Mapped[int] = mapped_column(Integer)
    remote_loss_percent: Mapped[float | None] = mapped_column(Float, nullable=True)
    remote_jitter_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
