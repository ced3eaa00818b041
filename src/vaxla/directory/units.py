"""The organisational tree: units with parents, paths and subtrees."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from vaxla.directory.errors import InvalidDirectoryInput, UnitNotFound
from vaxla.directory.models import OrgUnit


@dataclass(frozen=True, slots=True)
class UnitNode:
    id: int
    parent_id: int | None
    name: str
    path: str  # "/1/5/9/": ids from the root


class UnitTree:
    """An in-memory copy of the unit table (a municipality has hundreds, not millions)."""

    def __init__(self, nodes: Iterable[UnitNode]) -> None:
        self.nodes = {n.id: n for n in nodes}
        self._by_name_path = {self.name_path(i): i for i in self.nodes}

    def ancestors(self, unit_id: int) -> list[UnitNode]:
        """The unit and its ancestors, root first."""
        node = self.nodes[unit_id]
        ids = [int(x) for x in node.path.strip("/").split("/") if x]
        return [self.nodes[i] for i in ids if i in self.nodes]

    def name_path(self, unit_id: int) -> str:
        return "/".join(n.name for n in self.ancestors(unit_id))

    def find(self, name_path: str) -> int | None:
        return self._by_name_path.get(name_path)

    def subtree(self, unit_id: int) -> set[int]:
        prefix = self.nodes[unit_id].path
        return {n.id for n in self.nodes.values() if n.path.startswith(prefix)}

    def names_for_search(self, unit_ids: Iterable[int]) -> list[str]:
        """Names of the units and all their ancestors (searching a unit finds its subtree)."""
        out: list[str] = []
        for uid in unit_ids:
            for node in self.ancestors(uid):
                if node.name not in out:
                    out.append(node.name)
        return out


class UnitDirectory:
    """Reads and changes units; caches the tree for a few seconds between changes."""

    def __init__(self, ttl: float = 5.0) -> None:
        self.ttl = ttl
        self._tree: UnitTree | None = None
        self._loaded = 0.0

    def invalidate(self) -> None:
        self._tree = None

    async def tree(self, s: AsyncSession, fresh: bool = False) -> UnitTree:
        return await s.run_sync(lambda ss: self.tree_sync(ss, fresh))

    def tree_sync(self, s: Session, fresh: bool = False) -> UnitTree:
        if fresh or self._tree is None or time.monotonic() - self._loaded > self.ttl:
            rows = s.execute(select(OrgUnit.id, OrgUnit.parent_id, OrgUnit.name, OrgUnit.path))
            self._tree = UnitTree(UnitNode(r[0], r[1], r[2], r[3]) for r in rows)
            self._loaded = time.monotonic()
        return self._tree

    async def create(
        self, s: AsyncSession, name: str, parent_id: int | None, external_id: str | None = None
    ) -> OrgUnit:
        name = name.strip()
        if not name or "/" in name:
            raise InvalidDirectoryInput("a unit name is not empty and has no '/'", name=name)
        parent_path = "/"
        if parent_id is not None:
            parent = await s.get(OrgUnit, parent_id)
            if parent is None:
                raise UnitNotFound(f"no unit {parent_id}", id=parent_id)
            parent_path = parent.path
        unit = OrgUnit(name=name, parent_id=parent_id, path="/", external_id=external_id)
        s.add(unit)
        await s.flush()
        unit.path = f"{parent_path}{unit.id}/"
        await s.flush()
        self.invalidate()
        return unit

    async def ensure_path(self, s: AsyncSession, name_path: str, tree: UnitTree) -> int:
        """The id of the unit at ``name_path``, creating missing units on the way."""
        parts = [p.strip() for p in name_path.split("/") if p.strip()]
        if not parts:
            raise InvalidDirectoryInput("empty unit path")
        parent: int | None = None
        for i in range(len(parts)):
            sub = "/".join(parts[: i + 1])
            found = tree.find(sub)
            if found is None:
                unit = await self.create(s, parts[i], parent)
                found = unit.id
                tree.nodes[found] = UnitNode(found, parent, unit.name, unit.path)
                tree._by_name_path[sub] = found
            parent = found
        assert parent is not None
        return parent
