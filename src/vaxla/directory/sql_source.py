"""Search lookups answered by SQL over ``dir_search_tokens`` and ``dir_name_keys``.

Used while the in-memory index is being built, and when it is switched off.
Each answer is one statement (two for :meth:`SqlSource.exact_names`, as
SQLite allows no LIMIT inside a UNION).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, select, union, union_all
from sqlalchemy.orm import InstrumentedAttribute, Session

from vaxla.directory import lookups as limits
from vaxla.directory.idlists import ids_in
from vaxla.directory.lookups import (
    Constraint,
    Lookup,
    NameRow,
    TokenLookup,
)
from vaxla.directory.models import Membership, NameKey, Person, SearchToken

NAME_FIELDS = ("first_name", "last_name")


def _where(lookup: Lookup) -> tuple[InstrumentedAttribute[int], ColumnElement[bool]]:
    if isinstance(lookup, TokenLookup):
        col = SearchToken.token
        cond = (
            col == lookup.low if lookup.high is None else and_(col >= lookup.low, col < lookup.high)
        )
        if lookup.fields:
            cond = and_(cond, SearchToken.field.in_(lookup.fields))
        elif lookup.hidden:
            cond = and_(cond, SearchToken.field.not_in(lookup.hidden))
        return SearchToken.person_id, cond
    key = NameKey.key
    kcond = key == lookup.low if lookup.high is None else and_(key >= lookup.low, key < lookup.high)
    return NameKey.person_id, and_(
        kcond, NameKey.kind == lookup.kind, NameKey.field.in_(lookup.fields)
    )


class SqlSource:
    def __init__(self, s: Session) -> None:
        self.s = s
        self.conn = s.connection()

    def people_for(
        self, lookups: Constraint, within: Collection[int] | None
    ) -> tuple[set[int], bool]:
        """One UNION ALL statement; rows de-duplicated here, not with DISTINCT.

        (PostgreSQL answers DISTINCT ... LIMIT by walking another index in
        person order.)
        """
        selects = []
        for lookup in lookups:
            column, cond = _where(lookup)
            query = select(column.label("pid")).where(cond)
            if within is not None:
                query = query.where(ids_in(self.s, column, within))
            selects.append(query)
        if not selects:
            return set(), False
        compound: Any = union_all(*selects) if len(selects) > 1 else selects[0]
        if within is None:
            compound = compound.limit(3 * limits.CAP + 1)
        rows = self.conn.scalars(compound).all()
        found = set(rows)
        return found, within is None and (len(rows) > 3 * limits.CAP or len(found) > limits.CAP)

    def intersect(
        self, constraints: Sequence[Constraint], subtree: Collection[int] | None
    ) -> tuple[set[int], bool]:
        unions = []
        for c in constraints:
            selects = [select(col.label("pid")).where(cond) for col, cond in map(_where, c)]
            unions.append(union(*selects) if len(selects) > 1 else selects[0])
        base = unions[0].subquery()
        query = select(base.c.pid).distinct()
        for other in unions[1:]:
            query = query.where(base.c.pid.in_(other))
        if subtree is not None:
            query = query.where(
                base.c.pid.in_(select(Membership.person_id).where(Membership.unit_id.in_(subtree)))
            )
        found = set(self.conn.scalars(query.limit(limits.CAP + 1)).all())
        return found, len(found) > limits.CAP

    def in_units(self, ids: Collection[int], subtree: Collection[int]) -> set[int]:
        rows = self.conn.scalars(
            select(Membership.person_id)
            .where(ids_in(self.s, Membership.person_id, ids), Membership.unit_id.in_(subtree))
            .distinct()
        )
        return set(rows.all())

    def exact_names(
        self, pairs: Sequence[tuple[str | None, str | None]], include_inactive: bool, cap: int
    ) -> set[int]:
        ids: set[int] = set()
        for first, last in pairs:
            query = select(Person.id)
            if first is not None:
                query = query.where(Person.first_folded == first)
            if last is not None:
                query = query.where(Person.last_folded == last)
            if not include_inactive:
                query = query.where(Person.active.is_(True))
            ids |= set(self.conn.scalars(query.limit(cap)).all())
        return ids

    def names(self, ids: Collection[int], include_inactive: bool) -> list[NameRow]:
        query = select(
            Person.id, Person.first_name, Person.last_name, Person.last_folded, Person.first_folded
        ).where(ids_in(self.s, Person.id, ids))
        if not include_inactive:
            query = query.where(Person.active.is_(True))
        return [tuple(r) for r in self.conn.execute(query).all()]  # type: ignore[misc]

    def with_name_tokens(self, words: Sequence[str], ids: Collection[int], cap: int) -> list[int]:
        rows = self.conn.scalars(
            select(SearchToken.person_id)
            .where(
                SearchToken.token.in_(words),
                SearchToken.field.in_(NAME_FIELDS),
                ids_in(self.s, SearchToken.person_id, ids),
            )
            .limit(cap)
        )
        return list(rows.all())

    def with_name_keys(self, keys: Sequence[str], cap: int) -> list[int]:
        rows = self.conn.scalars(
            select(NameKey.person_id)
            .where(NameKey.key.in_(keys), NameKey.kind == "p", NameKey.field.in_(NAME_FIELDS))
            .limit(cap)
        )
        return list(rows.all())

    def in_name_order(self, ids: Collection[int], limit: int) -> list[int]:
        rows = self.conn.scalars(
            select(Person.id)
            .where(ids_in(self.s, Person.id, ids))
            .order_by(Person.last_folded, Person.first_folded, Person.id)
            .limit(limit)
        )
        return list(rows.all())

    def listing(
        self, subtree: Collection[int] | None, include_inactive: bool, limit: int
    ) -> list[int]:
        query = select(Person.id).order_by(Person.last_folded, Person.first_folded, Person.id)
        if not include_inactive:
            query = query.where(Person.active.is_(True))
        if subtree is not None:
            members = select(Membership.person_id).where(Membership.unit_id.in_(subtree))
            query = query.where(Person.id.in_(members))
        return list(self.conn.scalars(query.limit(limit)).all())
