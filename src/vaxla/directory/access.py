"""Access levels for directory entries, per field (R90).

Four levels, each including the ones below it:

====  =========  ==========================================================
1     public     what every employee sees (name, units, extension, e-mail)
2     all        every field (operators, agents, supervisors)
3     edit       change entries (directory editors)
4     admin      change fields, units, reasons and the access table itself
====  =========  ==========================================================

Each field has a level needed to see it and one needed to change it; the
defaults are below and administrators override them per field (table
``dir_field_access``). Custom fields carry their own levels.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum

from vaxla.api.auth import Principal


class Level(IntEnum):
    PUBLIC = 1
    ALL = 2
    EDIT = 3
    ADMIN = 4


ROLE_LEVELS: dict[str, Level] = {
    "employee": Level.PUBLIC,
    "agent": Level.ALL,
    "operator": Level.ALL,
    "supervisor": Level.ALL,
    "directory-editor": Level.EDIT,
    "directory-admin": Level.ADMIN,
    "admin": Level.ADMIN,
}

#: Roles that may set a diversion for anyone (everyone may for themself).
DIVERT_ANYONE_ROLES = ("operator", "supervisor", "agent", "directory-editor", "directory-admin")

#: (view level, edit level) of each standard field.
DEFAULT_FIELD_LEVELS: dict[str, tuple[Level, Level]] = {
    "first_name": (Level.PUBLIC, Level.EDIT),
    "last_name": (Level.PUBLIC, Level.EDIT),
    "titles": (Level.PUBLIC, Level.EDIT),
    "units": (Level.PUBLIC, Level.EDIT),
    "extension": (Level.PUBLIC, Level.EDIT),
    "direct": (Level.PUBLIC, Level.EDIT),
    "email": (Level.PUBLIC, Level.EDIT),
    "room": (Level.PUBLIC, Level.EDIT),
    "location": (Level.PUBLIC, Level.EDIT),
    "tasks": (Level.PUBLIC, Level.EDIT),
    "is_external": (Level.PUBLIC, Level.EDIT),
    "mobile": (Level.ALL, Level.EDIT),
    "addresses": (Level.ALL, Level.EDIT),
    "keywords": (Level.ALL, Level.EDIT),
    "groups": (Level.ALL, Level.EDIT),
    "active": (Level.ALL, Level.EDIT),
    "calendar_url": (Level.ALL, Level.EDIT),
    "calendar_opt_out": (Level.ALL, Level.EDIT),
    "username": (Level.ALL, Level.ADMIN),
    "external_id": (Level.ALL, Level.ADMIN),
    "diversion_message": (Level.PUBLIC, Level.EDIT),
    "messages": (Level.ALL, Level.ALL),
}

PHONE_KINDS = ("extension", "direct", "mobile")


def level_of(principal: Principal) -> Level:
    return ROLE_LEVELS.get(principal.role, Level.PUBLIC)


def custom_field_name(key: str) -> str:
    return f"custom.{key}"


@dataclass(frozen=True, slots=True)
class FieldPolicy:
    """The effective (view, edit) level of every field, custom ones included."""

    levels: Mapping[str, tuple[int, int]]

    @classmethod
    def build(
        cls,
        overrides: Iterable[tuple[str, int, int]] = (),
        custom: Iterable[tuple[str, int, int]] = (),
    ) -> FieldPolicy:
        levels: dict[str, tuple[int, int]] = {
            name: (int(v), int(e)) for name, (v, e) in DEFAULT_FIELD_LEVELS.items()
        }
        for key, view, edit in custom:
            levels[custom_field_name(key)] = (view, edit)
        for name, view, edit in overrides:
            if name in levels:
                levels[name] = (view, edit)
        return cls(levels)

    def can_view(self, field: str, level: int) -> bool:
        view, _ = self.levels.get(field, (Level.ALL, Level.ADMIN))
        return level >= view

    def can_edit(self, field: str, level: int) -> bool:
        _, edit = self.levels.get(field, (Level.ALL, Level.ADMIN))
        return level >= edit

    def visible_fields(self, level: int) -> set[str]:
        return {name for name in self.levels if self.can_view(name, level)}
