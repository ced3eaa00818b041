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

from sqlalchemy import ColumnElement, and_, select, union, union_all
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, Session

from vaxla.directory.idlists import ids_in
from vaxla.directory.indexing import fold, name_form, prefix_bounds, tokens
from vaxla.directory.models import Membership, NameKey, Person, SearchToken
from vaxla.directory.phonetic import (
    MatchKind,
    NameMatch,
    NameMatcher,
    consonant_skeleton,
    name_words,
    phonetic_key,
)
from vaxla.directory.records import normalise_number
from vaxla.directory.units import UnitDirectory

CAP = 1000  # rows one lookup may return before it counts as unselective
ROWS_CAP = 3 * CAP  # lookup rows read (a person has a token in several fields)
RANK_CAP = 60  # candidates ranked by name in Python
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


def _token_cond(prefix: str, fields: Sequence[str], hidden: Sequence[str] = ()) -> _Lookup:
    """Tokens starting with ``prefix`` in ``fields`` (empty: any field not ``hidden``)."""
    low, high = prefix_bounds(prefix)
    cond = and_(SearchToken.token >= low, SearchToken.token < high)
    if fields:
        cond = and_(cond, SearchToken.field.in_(fields))
    elif hidden:
        cond = and_(cond, SearchToken.field.not_in(hidden))
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


_DIGITS = re.compile(r"\D")


class DirectorySearch:
    def __init__(self, units: UnitDirectory, matcher: NameMatcher | None = None) -> None:
        self.units = units
        self.matcher = matcher or NameMatcher()

    def _constraints(
        self, q: SearchQuery, visible: set[str], hidden: Sequence[str]
    ) -> list[_Constraint]:
        out: list[_Constraint] = []
        name_fields = [f for f in NAME_FIELDS if f in visible]
        for word in q.text.split():
            c = _Constraint()
            for t in tokens(word)[:1]:
                c.conditions.append(_token_cond(t, (), hidden))
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

    async def search(
        self, s: AsyncSession, q: SearchQuery, visible: set[str], hidden: Sequence[str] = ()
    ) -> SearchResult:
        return await s.run_sync(lambda ss: self.search_sync(ss, q, visible, hidden))

    def _run(self, s: Session, c: _Constraint, within: set[int] | None) -> tuple[set[int], bool]:
        """The people a constraint holds for: its lookups in one UNION ALL statement.

        Rows are de-duplicated here, not with DISTINCT: PostgreSQL answers
        DISTINCT ... LIMIT by walking another index in person order.
        """
        selects = []
        for column, cond in c.conditions:
            query = select(column.label("pid")).where(cond)
            if within is not None:
                query = query.where(ids_in(s, column, within))
            selects.append(query)
        if not selects:
            return set(), False
        compound = union_all(*selects) if len(selects) > 1 else selects[0]
        if within is None:
            compound = compound.limit(ROWS_CAP + 1)
        rows = s.connection().scalars(compound).all()
        found = set(rows)
        capped = within is None and (len(rows) > ROWS_CAP or len(found) > CAP)
        return found, capped

    def search_sync(
        self, s: Session, q: SearchQuery, visible: set[str], hidden: Sequence[str] = ()
    ) -> SearchResult:
        """Search with the fields the caller may see; ``hidden``: the indexed ones they may not."""
        limit = max(1, min(q.limit, 200))
        filters = {
            "first_name": q.first_name,
            "last_name": q.last_name,
            "extension": q.extension,
            "mobile": q.mobile,
            "email": q.email,
            "room": q.room,
            "location": q.location,
            "tasks": q.task,
        }
        if any(value.strip() and name not in visible for name, value in filters.items()):
            return SearchResult([], 0)  # a filter on a hidden field finds nobody
        if q.unit_id is not None and "units" not in visible:
            return SearchResult([], 0)
        constraints = self._constraints(q, visible, hidden)
        subtree: set[int] | None = None
        if q.unit_id is not None:
            tree = self.units.tree_sync(s)
            subtree = tree.subtree(q.unit_id) if q.unit_id in tree.nodes else set()
        if not constraints:
            return self._listing(s, q, subtree, limit)
        quick = self._exact_names(s, q, visible, limit)
        if quick is not None:
            return quick
        results: list[tuple[set[int], bool]] = []
        for c in constraints:
            results.append(self._run(s, c, None))
        order = sorted(range(len(constraints)), key=lambda i: (results[i][1], len(results[i][0])))
        first = order[0]
        if results[first][1] and (len(constraints) > 1 or subtree is not None):
            # Every lookup is unselective on its own: intersect them in one statement.
            candidates, truncated = self._intersect(s, constraints, subtree)
            return self._rank(s, q, candidates, limit, truncated)
        candidates = set(results[first][0])
        truncated = results[first][1]
        for i in order[1:]:
            if not candidates:
                break
            ids, capped = results[i]
            if capped:
                ids, _ = self._run(s, constraints[i], candidates)
            candidates &= ids
        if subtree is not None and candidates:
            rows = s.connection().scalars(
                select(Membership.person_id)
                .where(ids_in(s, Membership.person_id, candidates), Membership.unit_id.in_(subtree))
                .distinct()
            )
            candidates &= set(rows.all())
        return self._rank(s, q, candidates, limit, truncated)

    def _exact_names(
        self, s: Session, q: SearchQuery, visible: set[str], limit: int
    ) -> SearchResult | None:
        """Fast path for a plain name typed in full ("Andersson", "Anna Andersson").

        When at least ``limit`` people carry exactly that name (by the folded name
        columns' index), nothing else can rank above them: return them without
        the prefix, phonetic and fuzzy lookups. Otherwise None (the full search runs).
        """
        words = q.text.split()
        other = (
            q.first_name,
            q.last_name,
            q.extension,
            q.room,
            q.location,
            q.task,
            q.mobile,
            q.email,
        )
        if (
            not 1 <= len(words) <= 2
            or any(v.strip() for v in other)
            or q.unit_id is not None
            or not {"first_name", "last_name"} <= visible
            or not all(w.isalpha() for w in words)
        ):
            return None
        f = [fold(w) for w in words]
        if len(f) == 1:
            conds = [Person.last_folded == f[0], Person.first_folded == f[0]]
        else:
            conds = [
                and_(Person.first_folded == f[0], Person.last_folded == f[1]),
                and_(Person.first_folded == f[1], Person.last_folded == f[0]),
            ]
        ids: set[int] = set()
        for cond in conds:  # SQLite allows no LIMIT inside a UNION: one query each
            query = select(Person.id).where(cond)
            if not q.include_inactive:
                query = query.where(Person.active.is_(True))
            ids |= set(s.connection().scalars(query.limit(RANK_CAP)).all())
        if len(ids) < limit:
            return None
        truncated = len(ids) > RANK_CAP
        ids = set(sorted(ids)[:RANK_CAP])  # all exact: no narrowing query needed
        result = self._rank(s, q, ids, limit, truncated)
        if len(result.hits) < limit or any(h.match != "exact" for h in result.hits):
            return None
        return result

    def _intersect(
        self, s: Session, constraints: list[_Constraint], subtree: set[int] | None
    ) -> tuple[set[int], bool]:
        """People every constraint holds for (and in the subtree), by one SQL statement."""
        unions = []
        for c in constraints:
            selects = [select(column.label("pid")).where(cond) for column, cond in c.conditions]
            unions.append(union(*selects) if len(selects) > 1 else selects[0])
        base = unions[0].subquery()
        query = select(base.c.pid).distinct()
        for other in unions[1:]:
            query = query.where(base.c.pid.in_(other))
        if subtree is not None:
            query = query.where(
                base.c.pid.in_(select(Membership.person_id).where(Membership.unit_id.in_(subtree)))
            )
        found = set(s.connection().scalars(query.limit(CAP + 1)).all())
        return found, len(found) > CAP

    def _listing(
        self, s: Session, q: SearchQuery, subtree: set[int] | None, limit: int
    ) -> SearchResult:
        query = select(Person.id).order_by(Person.last_folded, Person.first_folded, Person.id)
        if not q.include_inactive:
            query = query.where(Person.active.is_(True))
        if subtree is not None:
            members = select(Membership.person_id).where(Membership.unit_id.in_(subtree))
            query = query.where(Person.id.in_(members))
        ids = list((s.connection().scalars(query.limit(limit))).all())
        return SearchResult([Hit(pid, "list", 0.0) for pid in ids], len(ids))

    def _rank(
        self, s: Session, q: SearchQuery, candidates: set[int], limit: int, truncated: bool
    ) -> SearchResult:
        if not candidates:
            return SearchResult([], 0, truncated)
        ids = list(candidates)
        if len(ids) > RANK_CAP:
            ids = self._narrow(s, q, ids)
        query = select(
            Person.id, Person.first_name, Person.last_name, Person.last_folded, Person.first_folded
        ).where(ids_in(s, Person.id, ids))
        if not q.include_inactive:
            query = query.where(Person.active.is_(True))
        rows = (s.connection().execute(query)).all()
        text_words = q.text.split()
        scored: list[tuple[tuple[object, ...], Hit]] = []
        for pid, first, last, last_f, first_f in rows:
            kind, score, named = self._score(q, text_words, first, last)
            label = kind.name.lower() if kind is not None else "field"
            key = (-named, -(kind or 0), -score, last_f, first_f, pid)
            scored.append((key, Hit(pid, label, round(score, 3))))
        scored.sort(key=lambda item: item[0])
        return SearchResult([h for _, h in scored[:limit]], len(rows), truncated)

    def _narrow(self, s: Session, q: SearchQuery, ids: list[int]) -> list[int]:
        """Too many candidates to rank: exact name hits, same-sounding names, then name order."""
        words = [fold(w) for w in (q.text.split() + q.first_name.split() + q.last_name.split())]
        keep: list[int] = []
        conn = s.connection()
        if words:
            exact = conn.scalars(
                select(SearchToken.person_id)
                .where(
                    SearchToken.token.in_(words),
                    SearchToken.field.in_(NAME_FIELDS),
                    ids_in(s, SearchToken.person_id, ids),
                )
                .limit(3 * RANK_CAP)
            )
            keep = list(dict.fromkeys(exact.all()))[:RANK_CAP]
        if len(keep) < RANK_CAP and words:
            # Then the people whose name sounds the same (the phonetic key, exactly).
            wanted = set(ids)
            keys = [k for k in (phonetic_key(w) for w in words) if k]
            if keys:
                same = conn.scalars(
                    select(NameKey.person_id)
                    .where(
                        NameKey.key.in_(keys),
                        NameKey.kind == "p",
                        NameKey.field.in_(NAME_FIELDS),
                    )
                    .limit(20 * RANK_CAP)
                )
                keep = list(dict.fromkeys([*keep, *(p for p in same if p in wanted)]))[:RANK_CAP]
        if len(keep) < RANK_CAP:
            rest = conn.scalars(
                select(Person.id)
                .where(ids_in(s, Person.id, ids))
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
        form = name_form(f"{first} {last}")
        if text_words:
            whole = self.matcher.match(name_form(" ".join(text_words)), form)
            if whole is not None:
                matches.append(whole)
                named += len(text_words)
            else:
                for w in text_words:
                    m = self.matcher.match(name_form(w), form)
                    if m is not None:
                        matches.append(m)
                        named += 1
        for value, name in ((q.first_name, first), (q.last_name, last)):
            if value.strip():
                m = self.matcher.match(name_form(value), name_form(name))
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
