"""Directory and diversion tables (hänvisning).

Every table is created by the Alembic revision ``0002_directory``; change a
model only together with a new revision. Search works on two derived
tables kept in step with each person in the same transaction:
``dir_search_tokens`` (folded words of every searchable field, with the
field's name so access levels can hide a field from search) and
``dir_name_keys`` (Swedish phonetic keys and consonant skeletons of the
names).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Time,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeEngine

from vaxla.store.models import Base, UTCDateTime


def search_string(length: int) -> TypeEngine[str]:
    """A string compared byte-wise on PostgreSQL, so prefix ranges use the index."""
    return String(length).with_variant(String(length, collation="C"), "postgresql")


class OrgUnit(Base):
    """An organisational unit; ``path`` is ``/1/5/9/`` (ids from the root) for subtrees."""

    __tablename__ = "dir_units"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("dir_units.id", ondelete="RESTRICT"), nullable=True, index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    path: Mapped[str] = mapped_column(search_string(500), default="/", index=True)
    external_id: Mapped[str | None] = mapped_column(String(200), nullable=True, unique=True)


class Group(Base):
    """A named group of people (diverted together, scheduled together)."""

    __tablename__ = "dir_groups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")


class Person(Base):
    """An employee or selected external person."""

    __tablename__ = "dir_people"
    __table_args__ = (
        Index("ix_dir_people_last_first", "last_folded", "first_folded"),
        Index("ix_dir_people_first", "first_folded"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    first_folded: Mapped[str] = mapped_column(search_string(100))
    last_folded: Mapped[str] = mapped_column(search_string(100))
    email: Mapped[str | None] = mapped_column(String(200), nullable=True)
    titles: Mapped[list[str]] = mapped_column(JSON, default=list)
    tasks: Mapped[list[str]] = mapped_column(JSON, default=list)
    keywords: Mapped[list[str]] = mapped_column(JSON, default=list)
    room: Mapped[str | None] = mapped_column(String(100), nullable=True)
    location: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # [{"kind": "visit"|"post"|..., "text": "..."}]
    addresses: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    is_external: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Account name of the person (token/user subject): lets them set their own diversion.
    username: Mapped[str | None] = mapped_column(String(100), nullable=True, unique=True)
    external_id: Mapped[str | None] = mapped_column(String(200), nullable=True, unique=True)
    sync_source: Mapped[str | None] = mapped_column(String(100), nullable=True)
    calendar_url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    calendar_opt_out: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PhoneNumber(Base):
    """A number of a person: ``extension`` (string), ``direct`` or ``mobile`` (E.164)."""

    __tablename__ = "dir_phone_numbers"
    __table_args__ = (Index("ix_dir_phone_numbers_number", "number", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(
        ForeignKey("dir_people.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(20))
    number: Mapped[str] = mapped_column(search_string(40))


class Membership(Base):
    """A person in an organisational unit (one or more per person)."""

    __tablename__ = "dir_memberships"
    __table_args__ = (UniqueConstraint("person_id", "unit_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("dir_people.id", ondelete="CASCADE"))
    unit_id: Mapped[int] = mapped_column(ForeignKey("dir_units.id", ondelete="CASCADE"), index=True)


class GroupMember(Base):
    __tablename__ = "dir_group_members"
    __table_args__ = (UniqueConstraint("group_id", "person_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("dir_groups.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(
        ForeignKey("dir_people.id", ondelete="CASCADE"), index=True
    )


class CustomField(Base):
    """An administrator-defined field: text, number, date or choice."""

    __tablename__ = "dir_custom_fields"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(60), unique=True)
    label_sv: Mapped[str] = mapped_column(String(200))
    label_en: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(10))
    choices: Mapped[list[str]] = mapped_column(JSON, default=list)
    searchable: Mapped[bool] = mapped_column(Boolean, default=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    view_level: Mapped[int] = mapped_column(Integer, default=1)
    edit_level: Mapped[int] = mapped_column(Integer, default=3)


class CustomValue(Base):
    __tablename__ = "dir_custom_values"
    __table_args__ = (
        UniqueConstraint("person_id", "field_id"),
        Index("ix_dir_custom_values_field_text", "field_id", "value_text"),
        Index("ix_dir_custom_values_field_number", "field_id", "value_number"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("dir_people.id", ondelete="CASCADE"))
    field_id: Mapped[int] = mapped_column(ForeignKey("dir_custom_fields.id", ondelete="CASCADE"))
    value_text: Mapped[str | None] = mapped_column(String(500), nullable=True)
    value_number: Mapped[float | None] = mapped_column(Float, nullable=True)
    value_date: Mapped[Any] = mapped_column(Date, nullable=True)


class FieldAccess(Base):
    """The level needed to see and to change one field (R90); admins change it."""

    __tablename__ = "dir_field_access"

    field: Mapped[str] = mapped_column(String(60), primary_key=True)
    view_level: Mapped[int] = mapped_column(Integer)
    edit_level: Mapped[int] = mapped_column(Integer)


class SearchToken(Base):
    """A folded word of a searchable field of a person (free-text search)."""

    __tablename__ = "dir_search_tokens"
    __table_args__ = (
        Index("ix_dir_search_tokens_token", "token", "field", "person_id"),
        Index("ix_dir_search_tokens_person", "person_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("dir_people.id", ondelete="CASCADE"))
    field: Mapped[str] = mapped_column(String(60))
    token: Mapped[str] = mapped_column(search_string(80))


class NameKey(Base):
    """A phonetic key (``kind`` "p") or consonant skeleton ("s") of a name word."""

    __tablename__ = "dir_name_keys"
    __table_args__ = (
        Index("ix_dir_name_keys_key", "key", "kind", "person_id"),
        Index("ix_dir_name_keys_person", "person_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("dir_people.id", ondelete="CASCADE"))
    field: Mapped[str] = mapped_column(String(20))  # first_name | last_name
    kind: Mapped[str] = mapped_column(String(1))
    key: Mapped[str] = mapped_column(search_string(80))


class DiversionReason(Base):
    """A reason in the configurable list (lunch, möte, ...), labelled in Swedish and English."""

    __tablename__ = "dir_diversion_reasons"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    label_sv: Mapped[str] = mapped_column(String(100))
    label_en: Mapped[str] = mapped_column(String(100))
    position: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Diversion(Base):
    """A diversion of one person; current when not cleared and valid at the moment.

    Rows are never deleted: clearing sets ``cleared_at`` so the history stays.
    """

    __tablename__ = "dir_diversions"
    __table_args__ = (Index("ix_dir_diversions_person_open", "person_id", "cleared_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("dir_people.id", ondelete="CASCADE"))
    reason_id: Mapped[int] = mapped_column(ForeignKey("dir_diversion_reasons.id"))
    return_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    message: Mapped[str] = mapped_column(Text, default="")
    target_kind: Mapped[str | None] = mapped_column(String(20), nullable=True)
    target_value: Mapped[str | None] = mapped_column(String(100), nullable=True)
    source: Mapped[str] = mapped_column(String(20), default="manual")  # manual|group|calendar
    group_id: Mapped[int | None] = mapped_column(
        ForeignKey("dir_groups.id", ondelete="SET NULL"), nullable=True
    )
    calendar_uid: Mapped[str | None] = mapped_column(String(300), nullable=True)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime())
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    cleared_by: Mapped[str | None] = mapped_column(String(100), nullable=True)


class AbsenceRule(Base):
    """A weekly absence rule for a person or a group, valid until changed (R46.25, R80).

    ``kind`` "absence": absent inside the window on the weekdays; "working-hours":
    absent outside the window, on other weekdays and on Swedish public holidays.
    Times are local (Europe/Stockholm); weekdays are ISO numbers 1-7.
    """

    __tablename__ = "dir_absence_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int | None] = mapped_column(
        ForeignKey("dir_people.id", ondelete="CASCADE"), nullable=True, index=True
    )
    group_id: Mapped[int | None] = mapped_column(
        ForeignKey("dir_groups.id", ondelete="CASCADE"), nullable=True, index=True
    )
    kind: Mapped[str] = mapped_column(String(20))
    weekdays: Mapped[list[int]] = mapped_column(JSON)
    start_time: Mapped[Any] = mapped_column(Time)
    end_time: Mapped[Any] = mapped_column(Time)
    reason_id: Mapped[int] = mapped_column(ForeignKey("dir_diversion_reasons.id"))
    message: Mapped[str] = mapped_column(Text, default="")
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime())
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_by: Mapped[str] = mapped_column(String(100))


class LeftMessage(Base):
    """A message left for a person, kept until SMS/e-mail delivery exists (R46.21)."""

    __tablename__ = "dir_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(
        ForeignKey("dir_people.id", ondelete="CASCADE"), index=True
    )
    text: Mapped[str] = mapped_column(Text)
    caller_name: Mapped[str] = mapped_column(String(200), default="")
    caller_number: Mapped[str] = mapped_column(String(40), default="")
    channel: Mapped[str] = mapped_column(String(10), default="any")  # sms|email|any
    status: Mapped[str] = mapped_column(String(20), default="pending")
    left_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class SyncSource(Base):
    """A periodic import: LDAP/AD (``kind`` "ldap") or calendars ("calendar")."""

    __tablename__ = "dir_sync_sources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    interval_s: Mapped[int] = mapped_column(Integer, default=3600)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class AuditEntry(Base):
    """Who changed what, when, with the state before and after (JSON)."""

    __tablename__ = "dir_audit"
    __table_args__ = (Index("ix_dir_audit_entity", "entity", "entity_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(40))
    entity: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[str] = mapped_column(String(60))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class IndexChange(Base):
    """A person whose search rows changed (``person_id`` None: everyone, after a bulk import).

    In-memory search indexes (:mod:`vaxla.directory.memory_index`) read this
    log to stay in step with the database, across processes and nodes.
    """

    __tablename__ = "dir_index_changes"
    __table_args__ = ({"sqlite_autoincrement": True},)  # numbers never reused

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    person_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
