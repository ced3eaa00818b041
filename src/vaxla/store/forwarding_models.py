"""Tables of call forwarding (migration ``0005_forwarding``).

The rules themselves live in ``call_forwarding`` (one row per extension and
kind, created with the self-service tables in ``0004``, model
``vaxla.auth.models.CallForwarding``); this table holds what applies to an
extension's forwarding as a whole: how long its phones ring before the
no-answer rule takes the call.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from vaxla.store.models import Base, UTCDateTime


class CallForwardingSettings(Base):
    """Per-extension forwarding settings (vidarekoppling, R65, R83)."""

    __tablename__ = "call_forwarding_settings"

    extension: Mapped[str] = mapped_column(String(32), primary_key=True)
    no_answer_seconds: Mapped[int] = mapped_column(Integer, default=20)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str] = mapped_column(String(100))
