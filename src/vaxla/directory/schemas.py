"""Pydantic schemas of the directory API (OpenAPI documents them)."""

from __future__ import annotations

from datetime import datetime, time
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, Field

from vaxla.directory.records import Address, PersonRecord, Phone


class PersonIn(PersonRecord):
    """A new entry (or, for PUT by external id, the whole entry)."""


class PersonPatch(BaseModel):
    """Fields to change; fields left out stay as they are."""

    first_name: str | None = Field(None, min_length=1, max_length=100)
    last_name: str | None = Field(None, min_length=1, max_length=100)
    phones: list[Phone] | None = None
    email: str | None = None
    titles: list[str] | None = None
    tasks: list[str] | None = None
    keywords: list[str] | None = None
    room: str | None = None
    location: str | None = None
    addresses: list[Address] | None = None
    units: list[str] | None = None
    groups: list[str] | None = None
    custom: dict[str, str | float | None] | None = None
    is_external: bool | None = None
    active: bool | None = None
    username: str | None = None
    external_id: str | None = None
    calendar_url: str | None = None
    calendar_opt_out: bool | None = None


class DiversionOut(BaseModel):
    reason: str
    label_sv: str
    label_en: str
    return_at: datetime | None
    message: str
    target_kind: str | None
    target_value: str | None
    source: str = Field(description="manual, group, calendar or schedule")
    valid_from: datetime | None
    valid_until: datetime | None
    set_by: str | None
    summary_sv: str = Field(examples=["Möte, tillbaka 13:00"])
    summary_en: str


class PhoneStatusOut(BaseModel):
    extension: str
    registered: bool | None = Field(description="None when the PBX is not in this process")


class PersonOut(BaseModel):
    """A directory entry as the caller's access level lets them see it.

    Fields the caller may not see are left out of the JSON.
    """

    id: int
    match: str | None = Field(None, description="exact, prefix, phonetic, fuzzy, field or list")
    first_name: str | None = None
    last_name: str | None = None
    phones: list[Phone] = Field(default_factory=list)
    email: str | None = None
    titles: list[str] | None = None
    tasks: list[str] | None = None
    keywords: list[str] | None = None
    room: str | None = None
    location: str | None = None
    addresses: list[Address] | None = None
    units: list[str] | None = None
    unit_ids: list[int] | None = None
    groups: list[str] | None = None
    custom: dict[str, Any] = Field(default_factory=dict)
    is_external: bool | None = None
    active: bool | None = None
    username: str | None = None
    external_id: str | None = None
    calendar_url: str | None = None
    calendar_opt_out: bool | None = None
    diversion: DiversionOut | None = None
    phone_status: list[PhoneStatusOut] | None = None
    updated_at: datetime | None = None


class SearchOut(BaseModel):
    items: list[PersonOut]
    candidates: int
    truncated: bool = Field(description="True when a lookup hit its cap (refine the query)")


class DiversionIn(BaseModel):
    reason: str = Field(examples=["meeting"], description="A reason code from /diversions/reasons")
    return_at: AwareDatetime | None = Field(
        None, description="'tillbaka 13:00': when the person is back (with a time zone)"
    )
    message: str = Field("", max_length=500)
    target_kind: Literal["operator", "colleague", "voicemail", "mobile"] | None = None
    target_value: str | None = Field(None, max_length=100)
    valid_from: AwareDatetime | None = Field(None, description="Default: now")
    valid_until: AwareDatetime | None = Field(None, description="Default: until cleared")


class PersonDiversionOut(BaseModel):
    person_id: int
    diversion: DiversionOut | None


class DiversionHistoryOut(DiversionOut):
    id: int | None
    created_at: datetime | None
    cleared_at: datetime | None
    cleared_by: str | None


class GroupDiversionOut(BaseModel):
    group_id: int
    person_ids: list[int]


class RuleIn(BaseModel):
    person_id: int | None = None
    group_id: int | None = None
    kind: Literal["absence", "working-hours"]
    weekdays: list[int] = Field(examples=[[1, 2, 3, 4, 5]], description="ISO: 1 = Monday")
    start: time = Field(examples=["12:00"], description="Local time, Europe/Stockholm")
    end: time = Field(examples=["13:00"])
    reason: str
    message: str = ""
    valid_until: AwareDatetime | None = None


class RuleOut(BaseModel):
    id: int
    person_id: int | None
    group_id: int | None
    kind: str
    weekdays: list[int]
    start: str
    end: str
    reason: str
    message: str
    valid_until: str | None


class ReasonIn(BaseModel):
    code: str = Field(pattern=r"^[a-z0-9-]{1,40}$")
    label_sv: str = Field(min_length=1, max_length=100)
    label_en: str = Field(min_length=1, max_length=100)
    position: int = 0


class ReasonPatch(BaseModel):
    label_sv: str | None = None
    label_en: str | None = None
    position: int | None = None
    active: bool | None = None


class ReasonOut(BaseModel):
    code: str
    label_sv: str
    label_en: str
    position: int
    active: bool
    # What to key after *23* on the desk phone (active reasons only)
    phone_number: int | None = None


class MessageIn(BaseModel):
    text: str = Field(min_length=1, max_length=2000, examples=["Ring tillbaka om bygglovet"])
    caller_name: str = Field("", max_length=200)
    caller_number: str = Field("", max_length=40)
    channel: Literal["sms", "email", "any"] = "any"


class MessageOut(BaseModel):
    id: int
    person_id: int
    text: str
    caller_name: str
    caller_number: str
    channel: str
    status: str
    left_by: str
    created_at: datetime
    delivered_at: datetime | None


class UnitIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    parent_id: int | None = None


class UnitPatch(BaseModel):
    name: str | None = Field(None, min_length=1, max_length=200)


class UnitOut(BaseModel):
    id: int
    parent_id: int | None
    name: str
    path: str = Field(description="Names from the root, '/'-separated")


class GroupIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    description: str = ""


class GroupOut(BaseModel):
    id: int
    name: str
    description: str
    members: int


class FieldIn(BaseModel):
    key: str = Field(pattern=r"^[a-z][a-z0-9_]{0,59}$")
    label_sv: str
    label_en: str
    type: Literal["text", "number", "date", "choice"]
    choices: list[str] = Field(default_factory=list)
    searchable: bool = True
    position: int = 0
    view_level: int = Field(1, ge=1, le=4)
    edit_level: int = Field(3, ge=1, le=4)


class FieldOut(FieldIn):
    id: int


class AccessIn(BaseModel):
    view_level: int = Field(ge=1, le=4)
    edit_level: int = Field(ge=1, le=4)


class AccessOut(BaseModel):
    field: str
    view_level: int
    edit_level: int


class ExtensionStatusPerson(BaseModel):
    id: int
    first_name: str
    last_name: str
    diversion: DiversionOut | None


class ExtensionStatusOut(BaseModel):
    extension: str
    registered: bool | None
    closed: bool = Field(description="True only when everyone on the extension is diverted")
    people: list[ExtensionStatusPerson]


class AuditOut(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    entity: str
    entity_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class ImportOut(BaseModel):
    dry_run: bool
    added: list[str]
    changed: dict[str, list[str]] = Field(description="external id -> changed fields")
    deactivated: list[str]
    unchanged: int


class SyncSourceIn(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    kind: Literal["ldap", "calendar"]
    config: dict[str, Any]
    interval_s: int = Field(3600, ge=60)
    enabled: bool = True


class SyncSourceOut(SyncSourceIn):
    id: int
    last_run_at: datetime | None
    last_result: dict[str, Any] | None
