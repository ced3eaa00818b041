"""Directory administration: units, groups, custom fields, diversion reasons, audit.

Changing these needs the admin level (directory-admin or admin); reading
units, groups and reasons is open to every level.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from vaxla.api.auth import Principal
from vaxla.directory import audit
from vaxla.directory.access import Level, level_of
from vaxla.directory.diversion import numbered_reasons
from vaxla.directory.errors import (
    DuplicateEntry,
    FieldNotFound,
    InvalidDirectoryInput,
    NotAllowed,
    ReasonNotFound,
    UnitHasChildren,
    UnitNotFound,
)
from vaxla.directory.models import (
    CustomField,
    CustomValue,
    DiversionReason,
    Group,
    GroupMember,
    Membership,
    OrgUnit,
)
from vaxla.directory.service import DirectoryService


def need_admin(principal: Principal) -> None:
    if level_of(principal) < Level.ADMIN:
        raise NotAllowed("this needs the directory-admin role", role=principal.role)


class DirectoryAdmin:
    def __init__(self, service: DirectoryService) -> None:
        self.service = service
        self.db = service.db

    # ------------------------------------------------------------- units

    async def units(self) -> list[dict[str, Any]]:
        async with self.db.session() as s:
            tree = await self.service.units.tree(s, fresh=True)
        return [
            {"id": n.id, "parent_id": n.parent_id, "name": n.name, "path": tree.name_path(n.id)}
            for n in sorted(tree.nodes.values(), key=lambda n: tree.name_path(n.id))
        ]

    async def create_unit(
        self, name: str, parent_id: int | None, principal: Principal
    ) -> dict[str, Any]:
        need_admin(principal)
        now = self.service.now()
        async with self.db.transaction() as s:
            tree = await self.service.units.tree(s, fresh=True)
            parent_path = tree.name_path(parent_id) + "/" if parent_id in tree.nodes else ""
            if tree.find(parent_path + name.strip()) is not None:
                raise DuplicateEntry(f"the unit {parent_path + name!r} exists")
            unit = await self.service.units.create(s, name, parent_id)
            audit.add(
                s,
                actor=principal.subject,
                action="create",
                entity="unit",
                entity_id=unit.id,
                now=now,
                after={"name": unit.name, "parent_id": parent_id},
            )
            tree = await self.service.units.tree(s, fresh=True)
            return {
                "id": unit.id,
                "parent_id": parent_id,
                "name": unit.name,
                "path": tree.name_path(unit.id),
            }

    async def rename_unit(self, unit_id: int, name: str, principal: Principal) -> dict[str, Any]:
        """Rename a unit; everyone in its subtree is re-indexed for search."""
        need_admin(principal)
        if "/" in name or not name.strip():
            raise InvalidDirectoryInput("a unit name is not empty and has no '/'")
        now = self.service.now()
        async with self.db.transaction() as s:
            unit = await s.get(OrgUnit, unit_id)
            if unit is None:
                raise UnitNotFound(f"no unit {unit_id}", id=unit_id)
            before = unit.name
            unit.name = name.strip()
            await s.flush()
            tree = await self.service.units.tree(s, fresh=True)
            members = await s.scalars(
                select(Membership.person_id)
                .where(Membership.unit_id.in_(tree.subtree(unit_id)))
                .distinct()
            )
            await self.service.people.reindex(s, list(members))
            audit.add(
                s,
                actor=principal.subject,
                action="rename",
                entity="unit",
                entity_id=unit_id,
                now=now,
                before={"name": before},
                after={"name": unit.name},
            )
            return {
                "id": unit.id,
                "parent_id": unit.parent_id,
                "name": unit.name,
                "path": tree.name_path(unit.id),
            }

    async def delete_unit(self, unit_id: int, principal: Principal) -> None:
        need_admin(principal)
        now = self.service.now()
        async with self.db.transaction() as s:
            unit = await s.get(OrgUnit, unit_id)
            if unit is None:
                raise UnitNotFound(f"no unit {unit_id}", id=unit_id)
            children = await s.scalar(select(func.count()).where(OrgUnit.parent_id == unit_id))
            members = await s.scalar(select(func.count()).where(Membership.unit_id == unit_id))
            if children or members:
                raise UnitHasChildren(
                    "the unit still has units or people in it",
                    units=children,
                    people=members,
                )
            await s.delete(unit)
            audit.add(
                s,
                actor=principal.subject,
                action="delete",
                entity="unit",
                entity_id=unit_id,
                now=now,
                before={"name": unit.name, "parent_id": unit.parent_id},
            )
        self.service.units.invalidate()

    # ------------------------------------------------------------- groups

    async def groups(self) -> list[dict[str, Any]]:
        async with self.db.session() as s:
            counts = dict(
                (
                    await s.execute(
                        select(GroupMember.group_id, func.count()).group_by(GroupMember.group_id)
                    )
                ).all()
            )
            rows = await s.scalars(select(Group).order_by(Group.name))
            return [
                {
                    "id": g.id,
                    "name": g.name,
                    "description": g.description,
                    "members": counts.get(g.id, 0),
                }
                for g in rows
            ]

    async def create_group(
        self, name: str, description: str, principal: Principal
    ) -> dict[str, Any]:
        if level_of(principal) < Level.EDIT:
            raise NotAllowed("creating groups needs the edit level")
        now = self.service.now()
        async with self.db.transaction() as s:
            if await s.scalar(select(Group.id).where(Group.name == name)) is not None:
                raise DuplicateEntry(f"the group {name!r} exists", name=name)
            g = Group(name=name, description=description)
            s.add(g)
            await s.flush()
            audit.add(
                s,
                actor=principal.subject,
                action="create",
                entity="group",
                entity_id=g.id,
                now=now,
                after={"name": name, "description": description},
            )
            return {"id": g.id, "name": g.name, "description": g.description, "members": 0}

    # ------------------------------------------------------------- custom fields

    async def fields(self) -> list[dict[str, Any]]:
        async with self.db.session() as s:
            self.service.fields.invalidate()
            return [_field_view(d) for d in (await self.service.fields.all(s)).values()]

    async def create_field(self, data: dict[str, Any], principal: Principal) -> dict[str, Any]:
        need_admin(principal)
        if data["type"] == "choice" and not data.get("choices"):
            raise InvalidDirectoryInput("a choice field needs its choices")
        now = self.service.now()
        async with self.db.transaction() as s:
            if await s.scalar(select(CustomField.id).where(CustomField.key == data["key"])):
                raise DuplicateEntry(f"the field {data['key']!r} exists", key=data["key"])
            f = CustomField(**data)
            s.add(f)
            await s.flush()
            audit.add(
                s,
                actor=principal.subject,
                action="create",
                entity="custom-field",
                entity_id=f.key,
                now=now,
                after=data,
            )
            self.service.fields.invalidate()
            return {"id": f.id, **data}

    async def update_field(
        self, key: str, changes: dict[str, Any], principal: Principal
    ) -> dict[str, Any]:
        """Change a field's labels, choices, order, levels or searchability."""
        need_admin(principal)
        now = self.service.now()
        async with self.db.transaction() as s:
            f = await s.scalar(select(CustomField).where(CustomField.key == key))
            if f is None:
                raise FieldNotFound(f"no custom field {key!r}", key=key)
            audit.update(
                s,
                f,
                changes,
                actor=principal.subject,
                entity="custom-field",
                entity_id=key,
                now=now,
            )
            await s.flush()
            self.service.fields.invalidate()
            if "searchable" in changes:
                people = await s.scalars(
                    select(CustomValue.person_id).where(CustomValue.field_id == f.id)
                )
                await self.service.people.reindex(s, list(people))
            return _field_view(f)

    # ------------------------------------------------------------- reasons

    async def reasons(self) -> list[dict[str, Any]]:
        async with self.db.session() as s:
            self.service.diversions.invalidate()
            reasons = list((await self.service.diversions.reasons(s)).values())
            numbers = {r.code: n for n, r in enumerate(numbered_reasons(reasons), start=1)}
            return [
                {
                    "code": r.code,
                    "label_sv": r.label_sv,
                    "label_en": r.label_en,
                    "position": r.position,
                    "active": r.active,
                    "phone_number": numbers.get(r.code),
                }
                for r in sorted(reasons, key=lambda r: (r.position, r.id))
            ]

    async def create_reason(self, data: dict[str, Any], principal: Principal) -> dict[str, Any]:
        need_admin(principal)
        now = self.service.now()
        async with self.db.transaction() as s:
            if await s.scalar(
                select(DiversionReason.id).where(DiversionReason.code == data["code"])
            ):
                raise DuplicateEntry(f"the reason {data['code']!r} exists", code=data["code"])
            s.add(DiversionReason(**data, active=True))
            audit.add(
                s,
                actor=principal.subject,
                action="create",
                entity="diversion-reason",
                entity_id=data["code"],
                now=now,
                after=data,
            )
        self.service.diversions.invalidate()
        return {**data, "active": True}

    async def update_reason(
        self, code: str, changes: dict[str, Any], principal: Principal
    ) -> dict[str, Any]:
        """Rename, reorder or retire (``active: false``) a reason; history keeps it."""
        need_admin(principal)
        now = self.service.now()
        async with self.db.transaction() as s:
            r = await s.scalar(select(DiversionReason).where(DiversionReason.code == code))
            if r is None:
                raise ReasonNotFound(f"no diversion reason {code!r}", code=code)
            audit.update(
                s,
                r,
                changes,
                actor=principal.subject,
                entity="diversion-reason",
                entity_id=code,
                now=now,
            )
            out = {
                "code": r.code,
                "label_sv": r.label_sv,
                "label_en": r.label_en,
                "position": r.position,
                "active": r.active,
            }
        self.service.diversions.invalidate()
        return out

    # ------------------------------------------------------------- access and audit

    async def access(self) -> list[dict[str, Any]]:
        async with self.db.session() as s:
            policy = await self.service.policy(s)
        return [
            {"field": k, "view_level": v, "edit_level": e}
            for k, (v, e) in sorted(policy.levels.items())
        ]

    async def audit(
        self,
        principal: Principal,
        entity: str | None = None,
        entity_id: str | None = None,
        limit: int = 100,
    ) -> list[audit.AuditView]:
        need_admin(principal)
        async with self.db.session() as s:
            return await audit.entries(s, entity, entity_id, max(1, min(limit, 1000)))


def _field_view(d: Any) -> dict[str, Any]:
    return {
        "id": d.id,
        "key": d.key,
        "label_sv": d.label_sv,
        "label_en": d.label_en,
        "type": d.type,
        "choices": list(d.choices),
        "searchable": d.searchable,
        "position": d.position,
        "view_level": d.view_level,
        "edit_level": d.edit_level,
    }
