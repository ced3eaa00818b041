"""The directory's search rows held in memory, kept in step through a change log.

Search latency is what operators feel: a lookup in SQL costs a statement
and a round of Python per row set, about nine per search. This index holds
the same rows as ``dir_search_tokens`` and ``dir_name_keys`` (and the names,
active flags and unit memberships that ranking and filtering need) in
sorted key lists with posting arrays, and answers the same
:class:`~vaxla.directory.lookups.SearchSource` questions as
:class:`~vaxla.directory.sql_source.SqlSource`, without SQL.

The database stays the truth. Every write of search rows also appends the
person's id to ``dir_index_changes`` in the same transaction (a bulk import
appends one row without a person: "reload everything"). Before each search
the index reads the log past the last entry it applied and reloads those
people, so a search sees every committed change, also one made by another
process or node on the same database. On PostgreSQL a sequence number can
commit after a larger one: such gaps are re-read until filled or old.

While the index is (re)built, in a background thread, searches run on SQL.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from array import array
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from vaxla.directory import lookups as limits
from vaxla.directory.lookups import Constraint, Lookup, NameRow, TokenLookup

log = logging.getLogger(__name__)

NAME_FIELDS = ("first_name", "last_name")
GAP_SECONDS = 30.0  # how long a missing sequence number is waited for
IDLE_REBUILD = 12 * 3600.0  # unpolled this long: rebuild (the log keeps 24 h, index_log.KEEP)
CHUNK = 500  # people reloaded per statement


class Postings:
    """Sorted keys ``"<value>\t<field>"``; per key the ascending ids of the people having it.

    A key held by one person keeps a bare int (most are: numbers, e-mail
    addresses), so 100,000 people cost tens of MB, not hundreds.
    """

    __slots__ = ("keys", "lists")

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.lists: dict[str, int | array[int]] = {}

    def bulk_append(self, key: str, pid: int) -> None:
        """Add rows that come sorted by (key, pid)."""
        ids = self.lists.get(key)
        if ids is None:
            self.lists[key] = pid
            self.keys.append(key)
        elif isinstance(ids, int):
            self.lists[key] = array("l", (ids, pid))
        else:
            ids.append(pid)

    def add(self, key: str, pid: int) -> None:
        ids = self.lists.get(key)
        if ids is None:
            self.lists[key] = pid
            i = bisect_left(self.keys, key)
            if i == len(self.keys) or self.keys[i] != key:
                self.keys.insert(i, key)
        elif isinstance(ids, int):
            if ids != pid:
                self.lists[key] = array("l", sorted((ids, pid)))
        else:
            i = bisect_left(ids, pid)
            if i == len(ids) or ids[i] != pid:
                ids.insert(i, pid)

    def remove(self, key: str, pid: int) -> None:
        ids = self.lists.get(key)
        if ids is None:
            return
        if isinstance(ids, int):
            if ids == pid:
                del self.lists[key]  # the key stays in ``keys``: skipped, dropped at rebuild
            return
        i = bisect_left(ids, pid)
        if i < len(ids) and ids[i] == pid:
            del ids[i]
        if len(ids) == 1:
            self.lists[key] = ids[0]

    def get(self, value: str, field: str) -> int | array[int] | None:
        return self.lists.get(f"{value}\t{field}")

    def between(
        self, low: str, high: str, fields: tuple[str, ...], hidden: tuple[str, ...]
    ) -> Iterator[int | array[int]]:
        """Ids of keys with a value in ``[low, high)``, in ``fields`` (or any but ``hidden``)."""
        keys = self.keys
        lists = self.lists
        for i in range(bisect_left(keys, low), bisect_left(keys, high)):
            key = keys[i]
            ids = lists.get(key)
            if ids is None:
                continue
            field = key[key.rindex("\t") + 1 :]
            if (field in fields) if fields else (field not in hidden):
                yield ids


@dataclass(slots=True)
class _Person:
    first: str
    last: str
    first_f: str
    last_f: str
    active: bool
    units: tuple[int, ...]
    # "\n<field>\t<token>" ... "\n": the person's token rows, to test and to remove
    tokens: str = "\n"
    # "\n<kind><field>\t<key>" ... "\n"
    keys: str = "\n"


def _token_keys(p: _Person) -> Iterator[str]:
    """The person's token rows as posting keys "<token>\t<field>"."""
    for line in p.tokens.split("\n"):
        if line:
            field, _, token = line.partition("\t")
            yield f"{token}\t{field}"


def _name_keys(p: _Person) -> Iterator[tuple[str, str]]:
    """(kind, posting key "<key>\t<field>") of the person's phonetic rows."""
    for line in p.keys.split("\n"):
        if line:
            head, _, key = line.partition("\t")
            yield head[0], f"{key}\t{head[1:]}"


def _has(rows: str, marker: str, lookup_fields: tuple[str, ...], hidden: tuple[str, ...]) -> bool:
    """Does a "\\n<field>\\t<value>" list hold ``marker`` (``"\\t" + prefix``) in a wanted field?"""
    start = 0
    while (at := rows.find(marker, start)) >= 0:
        field = rows[rows.rfind("\n", 0, at) + 1 : at]
        if (field in lookup_fields) if lookup_fields else (field not in hidden):
            return True
        start = at + 1
    return False


def holds(p: _Person, lookup: Lookup) -> bool:
    """Does ``lookup`` hold for this person (the same answer as the posting lists)?"""
    if isinstance(lookup, TokenLookup):
        rows, fields, hidden = p.tokens, lookup.fields, lookup.hidden
    else:
        rows, fields, hidden = p.keys, tuple(lookup.kind + f for f in lookup.fields), ()
    if lookup.high is None:
        marker = "\t" + lookup.low + "\n"
        return _has(rows, marker, fields, hidden)
    # A prefix range [low, high) from prefix_bounds: tokens starting with ``low``.
    return _has(rows, "\t" + lookup.low, fields, hidden)


def _concat(conn: Connection, expr: str) -> str:
    """The SQL aggregate joining ``expr`` with newlines (per person, in the database)."""
    if conn.dialect.name == "postgresql":
        return f"string_agg({expr}, E'\\n')"
    return f"group_concat({expr}, char(10))"


def _tab(conn: Connection) -> str:
    return "E'\\t'" if conn.dialect.name == "postgresql" else "char(9)"


class MemoryIndex:
    """The search rows of every person, answering lookups (see the module doc)."""

    def __init__(self) -> None:
        self.people: dict[int, _Person] = {}
        self.tokens = Postings()
        self.keys: dict[str, Postings] = {"p": Postings(), "s": Postings()}
        self.last_folded: dict[str, set[int]] = defaultdict(set)
        self.first_folded: dict[str, set[int]] = defaultdict(set)
        self._order: list[int] | None = None  # people in name order
        self._rank: dict[int, int] = {}  # person -> place in name order

    # ------------------------------------------------------------ building

    @classmethod
    def load(cls, conn: Connection) -> MemoryIndex:
        """Every person's rows, read in index order (so the posting lists come sorted)."""
        index = cls()
        index._load_people(conn, "")
        cur = conn.connection.cursor()  # plain DB-API rows: millions of them
        try:
            cur.execute(
                "SELECT token, field, person_id FROM dir_search_tokens"
                " ORDER BY token, field, person_id"
            )
            append = index.tokens.bulk_append
            while rows := cur.fetchmany(50_000):
                for token, field, pid in rows:
                    append(f"{token}\t{field}", pid)
            cur.execute(
                "SELECT kind, key, field, person_id FROM dir_name_keys"
                " ORDER BY kind, key, field, person_id"
            )
            while rows := cur.fetchmany(50_000):
                for kind, key, field, pid in rows:
                    index.keys.setdefault(kind, Postings()).bulk_append(f"{key}\t{field}", pid)
        finally:
            cur.close()
        return index

    def _load_people(self, conn: Connection, where: str) -> None:
        """People (all, or ``where`` on the person id) with their rows as text."""
        units: dict[int, list[int]] = defaultdict(list)
        for pid, uid in conn.exec_driver_sql(
            f"SELECT person_id, unit_id FROM dir_memberships {where.format(id='person_id')}"
        ):
            units[pid].append(uid)
        tab = _tab(conn)
        tokens: dict[int, str] = {
            pid: rows
            for pid, rows in conn.exec_driver_sql(
                f"SELECT person_id, {_concat(conn, f'field || {tab} || token')}"
                f" FROM dir_search_tokens {where.format(id='person_id')} GROUP BY person_id"
            )
        }
        keys: dict[int, str] = {
            pid: rows
            for pid, rows in conn.exec_driver_sql(
                f"SELECT person_id, {_concat(conn, f'kind || field || {tab} || key')}"
                f" FROM dir_name_keys {where.format(id='person_id')} GROUP BY person_id"
            )
        }
        for pid, first, last, first_f, last_f, active in conn.exec_driver_sql(
            "SELECT id, first_name, last_name, first_folded, last_folded, active"
            f" FROM dir_people {where.format(id='id')}"
        ):
            p = _Person(first, last, first_f, last_f, bool(active), tuple(units.get(pid, ())))
            if (t := tokens.get(pid)) is not None:
                p.tokens = f"\n{t}\n"
            if (k := keys.get(pid)) is not None:
                p.keys = f"\n{k}\n"
            self.people[pid] = p
            self.last_folded[last_f].add(pid)
            self.first_folded[first_f].add(pid)
        self._order = None

    def _drop_person(self, pid: int) -> None:
        p = self.people.pop(pid, None)
        if p is None:
            return
        self.last_folded[p.last_f].discard(pid)
        self.first_folded[p.first_f].discard(pid)
        for key in _token_keys(p):
            self.tokens.remove(key, pid)
        for kind, key in _name_keys(p):
            self.keys[kind].remove(key, pid)
        self._order = None

    def reload(self, conn: Connection, person_ids: Collection[int]) -> None:
        """Replace these people's rows by what the database holds now."""
        ids = sorted(set(person_ids))
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            for pid in chunk:
                self._drop_person(pid)
            marks = ",".join(str(int(i)) for i in chunk)  # integers only: safe to inline
            self._load_people(conn, f"WHERE {{id}} IN ({marks})")
            for pid in chunk:
                p = self.people.get(pid)
                if p is None:
                    continue
                for key in _token_keys(p):
                    self.tokens.add(key, pid)
                for kind, key in _name_keys(p):
                    self.keys.setdefault(kind, Postings()).add(key, pid)

    # ------------------------------------------------------------ answering

    def _postings(self, lookup: Lookup) -> Iterator[int | array[int]]:
        if isinstance(lookup, TokenLookup):
            postings, fields, hidden = self.tokens, lookup.fields, lookup.hidden
        else:
            postings, fields, hidden = self.keys[lookup.kind], lookup.fields, ()
        if lookup.high is None:  # one value: "<value>\t<field>" sort between "\t" and "\n"
            low, high = lookup.low + "\t", lookup.low + "\n"
        else:
            low, high = lookup.low, lookup.high
        return postings.between(low, high, fields, hidden)

    def people_for(
        self, lookups: Constraint, within: Collection[int] | None
    ) -> tuple[set[int], bool]:
        if within is not None:
            people = self.people
            return {
                pid
                for pid in within
                if (p := people.get(pid)) is not None and any(holds(p, lk) for lk in lookups)
            }, False
        cap = limits.CAP
        most = 3 * cap + 1  # rows read at most, as SQL's LIMIT: the first in index order
        found: set[int] = set()
        rows = 0
        for lookup in lookups:
            for ids in self._postings(lookup):
                if isinstance(ids, int):
                    rows += 1
                    found.add(ids)
                else:
                    found.update(ids[: most - rows])
                    rows += min(len(ids), most - rows)
                if rows >= most or len(found) > cap:
                    return found, True
        return found, False

    def _all(self, lookups: Constraint, stop: int | None = None) -> set[int]:
        """Everyone a constraint holds for (or the first ``stop`` or so)."""
        found: set[int] = set()
        for lookup in lookups:
            for ids in self._postings(lookup):
                if isinstance(ids, int):
                    found.add(ids)
                else:
                    found.update(ids)
                if stop is not None and len(found) >= stop:
                    return found
        return found

    def intersect(
        self, constraints: Sequence[Constraint], subtree: Collection[int] | None
    ) -> tuple[set[int], bool]:
        """Each constraint in full (set unions of posting arrays), then intersected."""
        cap = limits.CAP
        sets = sorted((self._all(c) for c in constraints), key=len)
        found = sets[0].intersection(*sets[1:])
        if subtree is not None:
            found = self.in_units(found, subtree)
        if len(found) > cap:
            return set(sorted(found)[: cap + 1]), True
        return found, False

    def in_units(self, ids: Collection[int], subtree: Collection[int]) -> set[int]:
        units = set(subtree)
        people = self.people
        return {
            pid
            for pid in ids
            if (p := people.get(pid)) is not None and not units.isdisjoint(p.units)
        }

    def exact_names(
        self, pairs: Sequence[tuple[str | None, str | None]], include_inactive: bool, cap: int
    ) -> set[int]:
        out: set[int] = set()
        for first, last in pairs:
            if first is not None and last is not None:
                ids = self.first_folded.get(first, set()) & self.last_folded.get(last, set())
            elif last is not None:
                ids = self.last_folded.get(last, set())
            elif first is not None:
                ids = self.first_folded.get(first, set())
            else:
                continue
            taken = 0
            for pid in sorted(ids):
                if include_inactive or self.people[pid].active:
                    out.add(pid)
                    taken += 1
                    if taken >= cap:
                        break
        return out

    def names(self, ids: Collection[int], include_inactive: bool) -> list[NameRow]:
        out: list[NameRow] = []
        people = self.people
        for pid in ids:
            p = people.get(pid)
            if p is not None and (include_inactive or p.active):
                out.append((pid, p.first, p.last, p.last_f, p.first_f))
        return out

    def with_name_tokens(self, words: Sequence[str], ids: Collection[int], cap: int) -> list[int]:
        wanted = ids if isinstance(ids, set | frozenset) else set(ids)
        found: set[int] = set()
        for w in words:
            for field in NAME_FIELDS:
                holders = self.tokens.get(w, field)
                if holders is None:
                    continue
                if isinstance(holders, int):
                    holders = array("l", (holders,))
                found.update(pid for pid in holders if pid in wanted)
        return sorted(found)[:cap]

    def with_name_keys(self, keys: Sequence[str], cap: int) -> list[int]:
        out: list[int] = []
        postings = self.keys["p"]
        for key in sorted(set(keys)):
            ids: set[int] = set()
            for f in NAME_FIELDS:
                holders = postings.get(key, f)
                if isinstance(holders, int):
                    ids.add(holders)
                elif holders is not None:
                    ids.update(holders)
            out.extend(sorted(ids)[: cap - len(out)])
            if len(out) >= cap:
                break
        return out

    def _in_order(self) -> list[int]:
        if self._order is None:
            people = self.people
            self._order = sorted(
                people, key=lambda pid: (people[pid].last_f, people[pid].first_f, pid)
            )
            self._rank = {pid: i for i, pid in enumerate(self._order)}
        return self._order

    def in_name_order(self, ids: Collection[int], limit: int) -> list[int]:
        order = self._in_order()
        rank = self._rank
        try:  # ids come from this index: all known
            places = [rank[pid] for pid in ids]
        except KeyError:
            places = [rank[pid] for pid in ids if pid in rank]
        return [order[i] for i in heapq.nsmallest(limit, places)]

    def listing(
        self, subtree: Collection[int] | None, include_inactive: bool, limit: int
    ) -> list[int]:
        units = set(subtree) if subtree is not None else None
        out: list[int] = []
        for pid in self._in_order():
            p = self.people[pid]
            if not include_inactive and not p.active:
                continue
            if units is not None and units.isdisjoint(p.units):
                continue
            out.append(pid)
            if len(out) >= limit:
                break
        return out


class ChangeFeed:
    """Which people changed since the index last looked (``dir_index_changes``)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.last = 0
        self.gaps: dict[int, float] = {}  # missing seq -> when first missed
        self.clock = clock

    def start_at(self, conn: Connection) -> None:
        row = conn.exec_driver_sql("SELECT max(seq) FROM dir_index_changes").first()
        self.last = int(row[0]) if row and row[0] is not None else 0
        self.gaps.clear()

    def poll(self, conn: Connection) -> tuple[set[int], bool]:
        """(people to reload, whether everything must be reloaded)."""
        low = min(self.gaps, default=self.last + 1) - 1
        rows = conn.execute(
            text("SELECT seq, person_id FROM dir_index_changes WHERE seq > :low ORDER BY seq"),
            {"low": min(low, self.last)},
        ).all()
        changed: set[int] = set()
        everything = False
        now = self.clock()
        for seq, pid in rows:
            if seq <= self.last and seq not in self.gaps:
                continue  # applied already
            self.gaps.pop(seq, None)
            if seq > self.last + 1:
                for missing in range(self.last + 1, seq):
                    self.gaps.setdefault(missing, now)
            self.last = max(self.last, seq)
            if pid is None:
                everything = True
            else:
                changed.add(int(pid))
        for seq, since in list(self.gaps.items()):
            if now - since > GAP_SECONDS:
                del self.gaps[seq]  # a rolled-back transaction's number
        return changed, everything


class LiveIndex:
    """A :class:`MemoryIndex` built in the background and refreshed before each search."""

    def __init__(self, sessions: Callable[[], Session], background: bool = True) -> None:
        self._sessions = sessions
        # False: a search that finds no index builds it then and there (tests).
        self.background = background
        self._lock = threading.Lock()
        self._index: MemoryIndex | None = None
        self._feed = ChangeFeed()
        self._builder: threading.Thread | None = None
        self._closed = False
        self._polled = time.monotonic()
        self.builds = 0

    @property
    def ready(self) -> bool:
        return self._index is not None

    def start(self) -> None:
        """Build in a background thread (if not built or building)."""
        with self._lock:
            self._start_locked()

    def _start_locked(self) -> None:
        if self._closed or self._builder is not None:
            return
        if not self.background:
            self._install(*self._load())
            return
        self._builder = threading.Thread(target=self._build, name="directory-index", daemon=True)
        self._builder.start()

    def build(self) -> None:
        """Build (or rebuild) now, in this thread; searches meanwhile use the old index or SQL."""
        loaded = self._load()
        with self._lock:
            self._install(*loaded)

    def _load(self) -> tuple[MemoryIndex, ChangeFeed]:
        t0 = time.perf_counter()
        with self._sessions() as s:
            conn = s.connection()
            feed = ChangeFeed()
            feed.start_at(conn)  # changes committed while loading are read again after it
            index = MemoryIndex.load(conn)
        log.info(
            "directory index built: %d people in %.1f s",
            len(index.people),
            time.perf_counter() - t0,
        )
        return index, feed

    def _install(self, index: MemoryIndex, feed: ChangeFeed) -> None:
        if not self._closed:
            self._index, self._feed = index, feed
            self._polled = time.monotonic()
            self.builds += 1

    def _build(self) -> None:
        try:
            self.build()
        except Exception:
            log.exception("directory index build failed; searches use SQL")
        finally:
            self._builder = None

    @contextmanager
    def source(self, s: Session) -> Iterator[MemoryIndex | None]:
        """The index brought up to date within the session's view, or None (use SQL)."""
        with self._lock:
            index = self._index
            if index is None:
                self._start_locked()
                index = self._index
            if index is None:
                yield None
                return
            conn = s.connection()
            changed, everything = self._feed.poll(conn)
            now = time.monotonic()
            idle, self._polled = now - self._polled > IDLE_REBUILD, now
            if everything or idle:
                self._index = None
                self._start_locked()
                if self._index is None:
                    yield None
                    return
                index = self._index
            elif changed:
                index.reload(conn, changed)
            yield index

    def close(self, timeout: float = 10.0) -> None:
        with self._lock:
            self._closed = True
            builder = self._builder
        if builder is not None:
            builder.join(timeout)
        self._index = None
