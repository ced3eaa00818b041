"""Administrator-defined fields (R79): typed, searchable, orderable."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from vaxla.directory.errors import InvalidCustomValue
from vaxla.directory.models import CustomField

FieldType = Literal["text", "number", "date", "choice"]


@dataclass(frozen=True, slots=True)
class FieldDef:
    id: int
    key: str
    label_sv: str
    label_en: str
    type: str
    choices: tuple[str, ...]
    searchable: bool
    position: int
    view_level: int
    edit_level: int

    def coerce(self, value: Any) -> tuple[str | None, float | None, date | None]:
        """(text, number, date) columns for ``value``; raises on a value of the wrong type."""
        if value is None or value == "":
            return None, None, None
        try:
            if self.type == "number":
                number = float(value)
                return _number_text(number), number, None
            if self.type == "date":
                d = value if isinstance(value, date) else date.fromisoformat(str(value))
                return d.isoformat(), None, d
        except (TypeError, ValueError) as e:
            raise InvalidCustomValue(
                f"{self.key}: {value!r} is not a {self.type}", field=self.key, type=self.type
            ) from e
        text = str(value).strip()
        if self.type == "choice" and text not in self.choices:
            raise InvalidCustomValue(
                f"{self.key}: {text!r} is not one of the choices",
                field=self.key,
                choices=list(self.choices),
            )
        return text, None, None

    def from_text(self, text: str | None) -> Any:
        """The typed value of a stored ``value_text``."""
        if text is None:
            return None
        if self.type == "number":
            return float(text)
        if self.type == "date":
            return date.fromisoformat(text)
        return text

    def value(self, text: str | None, number: float | None, d: date | None) -> Any:
        if self.type == "number":
            return number
        if self.type == "date":
            return d
        return text


def _number_text(number: float) -> str:
    return str(int(number)) if number.is_integer() else str(number)


class FieldCatalog:
    def __init__(self, ttl: float = 5.0) -> None:
        self.ttl = ttl
        self._fields: dict[str, FieldDef] | None = None
        self._loaded = 0.0

    def invalidate(self) -> None:
        self._fields = None

    async def all(self, s: AsyncSession) -> dict[str, FieldDef]:
        return await s.run_sync(self.all_sync)

    def all_sync(self, s: Session) -> dict[str, FieldDef]:
        if self._fields is None or time.monotonic() - self._loaded > self.ttl:
            rows = s.scalars(select(CustomField).order_by(CustomField.position))
            self._fields = {
                r.key: FieldDef(
                    r.id,
                    r.key,
                    r.label_sv,
                    r.label_en,
                    r.type,
                    tuple(r.choices or ()),
                    r.searchable,
                    r.position,
                    r.view_level,
                    r.edit_level,
                )
                for r in rows
            }
            self._loaded = time.monotonic()
        return self._fields
