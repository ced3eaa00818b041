"""Directory search: one free-text box plus structured filters, ranked names.

Each query word and each filter is a *constraint*: a union of lookups
(folded-token prefix ranges, Swedish phonetic keys and consonant
skeletons; :mod:`vaxla.directory.lookups`). A
:class:`~vaxla.directory.lookups.SearchSource` answers them: the in-memory
index, or SQL over ``dir_search_tokens`` and ``dir_name_keys``.
Constraints are intersected, the smallest first, so a selective word keeps
every lookup cheap. The candidates' names are then ranked with
:class:`~vaxla.directory.phonetic.NameMatcher`: exact > prefix > phonetic >
fuzzy; people found only through other fields (unit, task, room ...) come
after the name matches.

Only fields the caller may see (R90) are searched, so a hidden field cannot
be probed through search.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from vaxla.directory.indexing import fold, name_form, prefix_bounds, tokens
from vaxla.directory.lookups import Constraint, KeyLookup, Lookup, SearchSource, TokenLookup
from vaxla.directory.phonetic import (
    MatchKind,
    NameMatch,
    NameMatcher,
    consonant_skeleton,
    name_words,
    phonetic_key,
)
from vaxla.directory.records import normalise_number
from vaxla.directory.sql_source import SqlSource
from vaxla.directory.units import UnitDirectory

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


def _token(prefix: str, fields: Sequence[str], hidden: Sequence[str] = ()) -> TokenLookup:
    """Tokens starting with ``prefix`` in ``fields`` (empty: any field not ``hidden``)."""
    low, high = prefix_bounds(prefix)
    return TokenLookup(low, high, tuple(fields), () if fields else tuple(hidden))


def _keys(word: str, fields: Sequence[str]) -> list[Lookup]:
    key = phonetic_key(word)
    if not key:
        return []
    out: list[Lookup] = []
    if len(key) >= 3:
        low, high = prefix_bounds(key)
        out.append(KeyLookup("p", low, high, tuple(fields)))
    else:
        out.append(KeyLookup("p", key, None, tuple(fields)))
    skeleton = consonant_skeleton(key)
    if len(skeleton) >= 3:
        out.append(KeyLookup("s", skeleton, None, tuple(fields)))
    return out


_DIGITS = re.compile(r"\D")


class DirectorySearch:
    def __init__(self, units: UnitDirectory, matcher: NameMatcher | None = None) -> None:
        self.units = units
        self.matcher = matcher or NameMatcher()

    def _constraints(
        self, q: SearchQuery, visible: set[str], hidden: Sequence[str]
    ) -> list[Constraint]:
        out: list[Constraint] = []
        name_fields = [f for f in NAME_FIELDS if f in visible]
        for word in q.text.split():
            c: list[Lookup] = [_token(t, (), hidden) for t in tokens(word)[:1]]
            if name_words(word) and name_fields:
                c.extend(_keys(word, name_fields))
            if c:
                out.append(c)
        for value, fld in ((q.first_name, "first_name"), (q.last_name, "last_name")):
            if fld not in visible:
                continue
            for word in name_words(value):
                c = [_token(t, [fld]) for t in tokens(word)[:1]]
                c.extend(_keys(word, [fld]))
                out.append(c)
        if q.extension and "extension" in visible:
            digits = _DIGITS.sub("", q.extension)
            if digits:
                out.append([_token(digits, ["extension"])])
        if q.mobile and "mobile" in visible:
            number = normalise_number("mobile", q.mobile)
            digits = number.lstrip("+")
            national = "0" + number[3:] if number.startswith("+46") else None
            c = [_token(digits, ["mobile"])] if digits else []
            if national and len(national) > 1:
                c.append(_token(national, ["mobile"]))
            if c:
                out.append(c)
        if q.email and "email" in visible:
            value = fold(q.email.strip())
            if value:
                out.append([_token(value, ["email"])])
        for value, fld in ((q.room, "room"), (q.location, "location"), (q.task, "tasks")):
            if value and fld in visible:
                for t in tokens(value):
                    out.append([_token(t, [fld])])
        return out

    async def search(
        self, s: AsyncSession, q: SearchQuery, visible: set[str], hidden: Sequence[str] = ()
    ) -> SearchResult:
        return await s.run_sync(lambda ss: self.search_sync(ss, q, visible, hidden))

    def search_sync(
        self,
        s: Session,
        q: SearchQuery,
        visible: set[str],
        hidden: Sequence[str] = (),
        source: SearchSource | None = None,
    ) -> SearchResult:
        """Search with the fields the caller may see; ``hidden``: the indexed ones they may not.

        ``source`` answers the lookups (default: SQL in the session ``s``).
        """
        src: SearchSource = source if source is not None else SqlSource(s)
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
            listed = src.listing(subtree, q.include_inactive, limit)
            return SearchResult([Hit(pid, "list", 0.0) for pid in listed], len(listed))
        quick = self._exact_names(src, q, visible, limit)
        if quick is not None:
            return quick
        results = [src.people_for(c, None) for c in constraints]
        order = sorted(range(len(constraints)), key=lambda i: (results[i][1], len(results[i][0])))
        first = order[0]
        if results[first][1] and (len(constraints) > 1 or subtree is not None):
            # Every lookup is unselective on its own: intersect them all at once.
            candidates, truncated = src.intersect(constraints, subtree)
            return self._rank(src, q, candidates, limit, truncated)
        candidates = set(results[first][0])
        truncated = results[first][1]
        for i in order[1:]:
            if not candidates:
                break
            ids, capped = results[i]
            if capped:
                ids, _ = src.people_for(constraints[i], candidates)
            candidates &= ids
        if subtree is not None and candidates:
            candidates &= src.in_units(candidates, subtree)
        return self._rank(src, q, candidates, limit, truncated)

    def _exact_names(
        self, src: SearchSource, q: SearchQuery, visible: set[str], limit: int
    ) -> SearchResult | None:
        """Fast path for a plain name typed in full ("Andersson", "Anna Andersson").

        When at least ``limit`` people carry exactly that name (by the folded name
        columns), nothing else can rank above them: return them without
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
        pairs: list[tuple[str | None, str | None]] = (
            [(None, f[0]), (f[0], None)] if len(f) == 1 else [(f[0], f[1]), (f[1], f[0])]
        )
        ids = src.exact_names(pairs, q.include_inactive, RANK_CAP)
        if len(ids) < limit:
            return None
        truncated = len(ids) > RANK_CAP
        ids = set(sorted(ids)[:RANK_CAP])  # all exact: no narrowing needed
        result = self._rank(src, q, ids, limit, truncated)
        if len(result.hits) < limit or any(h.match != "exact" for h in result.hits):
            return None
        return result

    def _rank(
        self, src: SearchSource, q: SearchQuery, candidates: set[int], limit: int, truncated: bool
    ) -> SearchResult:
        if not candidates:
            return SearchResult([], 0, truncated)
        ids: Collection[int] = candidates
        if len(candidates) > RANK_CAP:
            ids = self._narrow(src, q, candidates)
        rows = src.names(ids, q.include_inactive)
        text_words = q.text.split()
        scored: list[tuple[tuple[object, ...], Hit]] = []
        for pid, first, last, last_f, first_f in rows:
            kind, score, named = self._score(q, text_words, first, last)
            label = kind.name.lower() if kind is not None else "field"
            key = (-named, -(kind or 0), -score, last_f, first_f, pid)
            scored.append((key, Hit(pid, label, round(score, 3))))
        scored.sort(key=lambda item: item[0])
        return SearchResult([h for _, h in scored[:limit]], len(rows), truncated)

    def _narrow(self, src: SearchSource, q: SearchQuery, ids: set[int]) -> list[int]:
        """Too many candidates to rank: exact name hits, same-sounding names, then name order."""
        words = [fold(w) for w in (q.text.split() + q.first_name.split() + q.last_name.split())]
        keep: list[int] = []
        if words:
            exact = src.with_name_tokens(words, ids, 3 * RANK_CAP)
            keep = list(dict.fromkeys(exact))[:RANK_CAP]
        if len(keep) < RANK_CAP and words:
            # Then the people whose name sounds the same (the phonetic key, exactly).
            keys = [k for k in (phonetic_key(w) for w in words) if k]
            if keys:
                same = src.with_name_keys(keys, 20 * RANK_CAP)
                keep = list(dict.fromkeys([*keep, *(p for p in same if p in ids)]))[:RANK_CAP]
        if len(keep) < RANK_CAP:
            rest = src.in_name_order(ids, RANK_CAP)
            keep = list(dict.fromkeys([*keep, *rest]))[:RANK_CAP]
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
