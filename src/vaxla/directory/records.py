"""A person's directory entry as data: what the API, import and export exchange.

Units are paths of unit names from the root, separated by ``/``
(``Växjö kommun/Socialförvaltningen/IFO``); groups are group names; custom
fields are keyed by their ``key``. Phone numbers: extensions are strings of
digits, direct and mobile numbers E.164 (``+46701234567``); a Swedish
national number (``070-123 45 67``) is accepted and stored as E.164.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

PhoneKind = Literal["extension", "direct", "mobile"]

_NOT_DIGITS = re.compile(r"[^\d+]")


def normalise_number(kind: str, number: str) -> str:
    """Extensions keep their digits; other numbers become E.164 (Swedish default)."""
    raw = _NOT_DIGITS.sub("", number)
    if kind == "extension":
        return raw.lstrip("+")
    if raw.startswith("00"):
        raw = "+" + raw[2:]
    elif raw.startswith("0"):
        raw = "+46" + raw[1:]
    elif raw and not raw.startswith("+"):
        raw = "+" + raw
    return raw


def national_form(e164: str) -> str | None:
    """``+46701234567`` -> ``0701234567``; None for non-Swedish numbers."""
    return "0" + e164[3:] if e164.startswith("+46") else None


class Phone(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: PhoneKind
    number: str = Field(min_length=1, max_length=40, examples=["1234"])

    @field_validator("number")
    @classmethod
    def _digits(cls, v: str) -> str:
        if not re.fullmatch(r"[\d +\-()/]+", v) or not re.search(r"\d", v):
            raise ValueError("a phone number has digits, spaces, +, -, ( ) or / only")
        return v


class Address(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: str = Field("visit", max_length=20, examples=["visit", "post"])
    text: str = Field(max_length=500, examples=["Västra Esplanaden 18, 352 31 Växjö"])


CustomValueIn = str | float | date | None


def _clean(values: list[str]) -> list[str]:
    out: list[str] = []
    for v in (x.strip() for x in values):
        if v and v not in out:
            out.append(v)
    return out


class PersonRecord(BaseModel):
    """All the data of a directory entry (without diversion and messages)."""

    first_name: str = Field(min_length=1, max_length=100, examples=["Åsa"])
    last_name: str = Field(min_length=1, max_length=100, examples=["Lindqvist"])
    phones: list[Phone] = Field(default_factory=list)
    email: str | None = Field(None, max_length=200)
    titles: list[str] = Field(default_factory=list)
    tasks: list[str] = Field(default_factory=list, description="Arbetsuppgifter/ärenden.")
    keywords: list[str] = Field(default_factory=list)
    room: str | None = Field(None, max_length=100)
    location: str | None = Field(None, max_length=200)
    addresses: list[Address] = Field(default_factory=list)
    units: list[str] = Field(default_factory=list, description="Unit paths, '/'-separated.")
    groups: list[str] = Field(default_factory=list)
    custom: dict[str, CustomValueIn] = Field(default_factory=dict)
    is_external: bool = False
    active: bool = True
    username: str | None = Field(None, max_length=100)
    external_id: str | None = Field(None, max_length=200)
    calendar_url: str | None = Field(None, max_length=500)
    calendar_opt_out: bool = False

    @model_validator(mode="after")
    def _normalise(self) -> PersonRecord:
        return self._tidy()

    def _tidy(self) -> PersonRecord:
        """Numbers normalised, duplicates and blanks dropped, units' slashes tidied."""
        phones: list[Phone] = []
        for p in self.phones:
            n = Phone.model_construct(kind=p.kind, number=normalise_number(p.kind, p.number))
            if n not in phones:
                phones.append(n)
        self.phones = phones
        self.first_name = self.first_name.strip()
        self.last_name = self.last_name.strip()
        self.email = (self.email or "").strip().lower() or None
        self.titles = _clean(self.titles)
        self.tasks = _clean(self.tasks)
        self.keywords = _clean(self.keywords)
        self.units = _clean(
            ["/".join(s.strip() for s in u.split("/") if s.strip()) for u in self.units]
        )
        self.groups = _clean(self.groups)
        self.room = (self.room or "").strip() or None
        self.location = (self.location or "").strip() or None
        return self

    def normalised(self) -> PersonRecord:
        """A normalised copy (records are normalised when validated; copies may not be)."""
        return self.model_copy()._tidy()

    def numbers(self, kind: str) -> list[str]:
        return [p.number for p in self.phones if p.kind == kind]

    def comparable(self) -> dict[str, object]:
        """JSON-safe dict of the record (for diffs, audit and export)."""
        return self.model_dump(mode="json")
