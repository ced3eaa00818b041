"""Directory search: one free-text box plus structured filters, ranked names.

Each query word and each filter is a *constraint*: a union of indexed
lookups (folded-token prefix ranges in ``dir_search_tokens``, Swedish
phonetic keys and consonant skeletons in ``dir_name_keys``). Constraints are
intersected, the smallest first, so a selective word keeps every lookup
cheap. The candidates' names are then ranked with
:class:`~vaxla.directory.phonetic.NameMatcher`: exact > prefix > phonetic >
fuzzy; people found only through other fields (unit, task, room ...) come
after the name matches.

Only fields the caller may see (R90) are searched, so a hidden field cannot
be probed through search.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, Select, and_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from vaxla.directory.indexing import fold, prefix_bounds, tokens
from vaxla.directory.models import Membership, NameKey, Person, SearchToken
from vaxla.directory.phonetic import (
    MatchKind,
    NameMatch,
    NameMatcher,
    analyse_name,
    consonant_skeleton,
    name_words,
    phonetic_key,
)
from vaxla.directory.records import normalise_number
from vaxla.directory.units import UnitDirectory

CAP = 2000  # rows one lookup may return before it counts as unselective
RANK_CAP = 300  # candidates ranked by name in Python
NAME_FIELDS = ("first_name", "last_name")


@dataclass(frozen=True, slots=True)
class SearchQuery:
    text: str = ""
    first_name: str = ""
    last_name: str = ""
    extension: str = ""
    unit_id: int | None = None  # the unit and its subtree
    room: str = ""
    location: str = ""
    task: str = ""
    mobile: str = ""
    email: str = ""
    include_inactive: bool = False
    limit: int = 20


@dataclass(frozen=True, slots=True)
class Hit:
    person_id: int
    match: str  # exact | prefix | phonetic | fuzzy | field | list
    score: float


@dataclass(slots=True)
class SearchResult:
    hits: list[Hit]
    candidates: int
    truncated: bool = False


_Lookup = tuple[InstrumentedAttribute[int], ColumnElement[bool]]  # (person_id column, where)


@dataclass(slots=True)
class _Constraint:
    """Alternatives (selects of person_id) of which one must hold."""

    conditions: list[_Lookup] = field(default_factory=list)


def _token_cond(prefix: str, fields: Sequence[str]) -> _Lookup:
    low, high = prefix_bounds(prefix)
    cond = and_(SearchToken.token >= low, SearchToken.token < high, SearchToken.field.in_(fields))
    return SearchToken.person_id, cond


def _exact_token_cond(token: str, fields: Sequence[str]) -> _Lookup:
    return SearchToken.person_id, and_(SearchToken.token == token, SearchToken.field.in_(fields))


def _key_conds(word: str, fields: Sequence[str]) -> list[_Lookup]:
    key = phonetic_key(word)
    if not key:
        return []
    out: list[_Lookup] = []
    if len(key) >= 3:
        low, high = prefix_bounds(key)
        key_cond = and_(NameKey.key >= low, NameKey.key < high)
    else:
        key_cond = NameKey.key == key
    out.append((NameKey.person_id, and_(key_cond, NameKey.kind == "p", NameKey.field.in_(fields))))
    skeleton = consonant_skeleton(key)
    if len(skeleton) >= 3:
        out.append(
            (
                NameKey.person_id,
                and_(NameKey.key == skeleton, NameKey.kind == "s", NameKey.field.in_(fields)),
            )
        )
    return out


def _select(column: InstrumentedAttribute[int], cond: ColumnElement[bool]) -> Select[int]:
    return select(column).where(cond).distinct()


_DIGITS = re.compile(r"\D")


class DirectorySearch:
    def __init__(self, units: UnitDirectory, matcher: NameMatcher | None = None) -> None:
        self.units = units
        self.matcher = matcher or NameMatcher()

    def _constraints(self, q: SearchQuery, visible: set[str]) -> list[_Constraint]:
        out: list[_Constraint] = []
        text_fields = sorted(visible)
        name_fields = [f for f in NAME_FIELDS if f in visible]
        for word in q.text.split():
            c = _Constraint()
            for t in tokens(word)[:1]:
                c.conditions.append(_token_cond(t, text_fields))
            if name_words(word) and name_fields:
                c.conditions.extend(_key_conds(word, name_fields))
            if c.conditions:
                out.append(c)
        for value, fld in ((q.first_name, "first_name"), (q.last_name, "last_name")):
            if fld not in visible:
                continue
            for word in name_words(value):
                c = _Constraint()
                for t in tokens(word)[:1]:
                    c.conditions.append(_token_cond(t, [fld]))
                c.conditions.extend(_key_conds(word, [fld]))
                out.append(c)
        if q.extension and "extension" in visible:
            digits = _DIGITS.sub("", q.extension)
            if digits:
                out.append(_Constraint([_token_cond(digits, ["extension"])]))
        if q.mobile and "mobile" in visible:
            number = normalise_number("mobile", q.mobile)
            digits = number.lstrip("+")
            national = "0" + number[3:] if number.startswith("+46") else None
            conds = [_token_cond(digits, ["mobile"])] if digits else []
            if national and len(national) > 1:
                conds.append(_token_cond(national, ["mobile"]))
            if conds:
                out.append(_Constraint(conds))
        if q.email and "email" in visible:
            value = fold(q.email.strip())
            if value:
                out.append(_Constraint([_token_cond(value, ["email"])]))
        for value, fld in ((q.room, "room"), (q.location, "location"), (q.task, "tasks")):
            if value and fld in visible:
                for t in tokens(value):
                    out.append(_Constraint([_token_cond(t, [fld])]))
        return out

    async def _run(
        self, s: AsyncSession, c: _Constraint, within: set[int] | None
    ) -> tuple[set[int], bool]:
        found: set[int] = set()
        capped = False
        for column, cond in c.conditions:
            query = _select(column, cond)
            query = query.where(column.in_(within)) if within is not None else query.limit(CAP + 1)
            ids = set((await s.scalars(query)).all())
            if within is None and len(ids) > CAP:
                capped = True
            found |= ids
        return found, capped

    async def search(self, s: AsyncSession, q: SearchQuery, visible: set[str]) -> SearchResult:
        limit = max(1, min(q.limit, 200))
        constraints = self._constraints(q, visible)
        subtree: set[int] | None = None
        if q.unit_id is not None:
            tree = await self.units.tree(s)
            subtree = tree.subtree(q.unit_id) if q.unit_id in tree.nodes else set()
        if not constraints:
            return await self._listing(s, q, subtree, limit)
        results: list[tuple[set[int], bool]] = []
        for c in constraints:
            results.append(await self._run(s, c, None))
        order = sorted(range(len(constraints)), key=lambda i: (results[i][1], len(results[i][0])))
        first = order[0]
        candidates = set(results[first][0])
        truncated = results[first][1]
        for i in order[1:]:
            if not candidates:
                break
            ids, capped = results[i]
            if capped:
                ids, _ = await self._run(s, constraints[i], candidates)
            candidates &= ids
        if subtree is not None and candidates:
            rows = await s.scalars(
                select(Membership.person_id)
                .where(Membership.person_id.in_(candidates), Membership.unit_id.in_(subtree))
                .distinct()
            )
            candidates &= set(rows.all())
        return await self._rank(s, q, candidates, limit, truncated)

    async def _listing(
        self, s: AsyncSession, q: SearchQuery, subtree: set[int] | None, limit: int
    ) -> SearchResult:
        query = select(Person.id).order_by(Person.last_folded, Person.first_folded, Person.id)
        if not q.include_inactive:
            query = query.where(Person.active.is_(True))
        if subtree is not None:
            members = select(Membership.person_id).where(Membership.unit_id.in_(subtree))
            query = query.where(Person.id.in_(members))
        ids = list((await s.scalars(query.limit(limit))).all())
        return SearchResult([Hit(pid, "list", 0.0) for pid in ids], len(ids))

    async def _rank(
        self, s: AsyncSession, q: SearchQuery, candidates: set[int], limit: int, truncated: bool
    ) -> SearchResult:
        if not candidates:
            return SearchResult([], 0, truncated)
        ids = list(candidates)
        if len(ids) > RANK_CAP:
            ids = await self._narrow(s, q, ids)
        query = select(
            Person.id, Person.first_name, Person.last_name, Person.last_folded, Person.first_folded
        ).where(Person.id.in_(ids))
        if not q.include_inactive:
            query = query.where(Person.active.is_(True))
        rows = (await s.execute(query)).all()
        text_words = q.text.split()
        scored: list[tuple[tuple[object, ...], Hit]] = []
        for pid, first, last, last_f, first_f in rows:
            kind, score, named = self._score(q, text_words, first, last)
            label = kind.name.lower() if kind is not None else "field"
            key = (-named, -(kind or 0), -score, last_f, first_f, pid)
            scored.append((key, Hit(pid, label, round(score, 3))))
        scored.sort(key=lambda item: item[0])
        return SearchResult([h for _, h in scored[:limit]], len(rows), truncated)

    async def _narrow(self, s: AsyncSession, q: SearchQuery, ids: list[int]) -> list[int]:
        """Too many candidates to rank: keep exact name hits first, then name order."""
        words = [fold(w) for w in (q.text.split() + q.first_name.split() + q.last_name.split())]
        keep: list[int] = []
        if words:
            exact = await s.scalars(
                select(SearchToken.person_id)
                .where(
                    SearchToken.token.in_(words),
                    SearchToken.field.in_(NAME_FIELDS),
                    SearchToken.person_id.in_(ids),
                )
                .distinct()
                .limit(RANK_CAP)
            )
            keep = list(exact.all())
        if len(keep) < RANK_CAP:
            rest = await s.scalars(
                select(Person.id)
                .where(Person.id.in_(ids))
                .order_by(Person.last_folded, Person.first_folded)
                .limit(RANK_CAP)
            )
            keep = list(dict.fromkeys([*keep, *rest.all()]))[:RANK_CAP]
        return keep

    def _score(
        self, q: SearchQuery, text_words: list[str], first: str, last: str
    ) -> tuple[MatchKind | None, float, int]:
        """(weakest name-match kind, mean score, number of query words matched as names)."""
        matches: list[NameMatch] = []
        named = 0
        form = analyse_name(f"{first} {last}")
        if text_words:
            whole = self.matcher.match(" ".join(text_words), form)
            if whole is not None:
                matches.append(whole)
                named += len(text_words)
            else:
                for w in text_words:
                    m = self.matcher.match(w, form)
                    if m is not None:
                        matches.append(m)
                        named += 1
        for value, name in ((q.first_name, first), (q.last_name, last)):
            if value.strip():
                m = self.matcher.match(value, name)
                if m is not None:
                    matches.append(m)
                    named += len(value.split())
        if not matches:
            return None, 0.0, 0
        return (
            min(m.kind for m in matches),
            sum(m.score for m in matches) / len(matches),
            named,
        )
