"""What a directory search asks of its data, as plain values.

The search logic (:mod:`vaxla.directory.search`) decides *which* lookups a
query needs and how to combine and rank them; a :class:`SearchSource`
answers them. There are two sources with the same answers: SQL over the
derived tables (:mod:`vaxla.directory.sql_source`) and an in-memory index
kept in step with them (:mod:`vaxla.directory.memory_index`).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

CAP = 1000  # people one lookup may find before it counts as unselective
# (a lookup reads at most 3 * CAP rows: a person has a token in several fields)


@dataclass(frozen=True, slots=True)
class TokenLookup:
    """Folded tokens in ``[low, high)`` (``high`` None: exactly ``low``).

    ``fields``: only these fields; else any field but ``hidden``.
    """

    low: str
    high: str | None
    fields: tuple[str, ...] = ()
    hidden: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class KeyLookup:
    """Phonetic keys (``kind`` "p") or consonant skeletons ("s") of name words in ``fields``."""

    kind: str
    low: str
    high: str | None
    fields: tuple[str, ...]


Lookup = TokenLookup | KeyLookup
Constraint = Sequence[Lookup]  # alternatives, of which one must hold
NameRow = tuple[int, str, str, str, str]  # id, first, last, last folded, first folded


class SearchSource(Protocol):
    """Answers to the lookups of one search (one snapshot of the directory)."""

    def people_for(
        self, lookups: Constraint, within: Collection[int] | None
    ) -> tuple[set[int], bool]:
        """People any lookup holds for, among ``within`` if given.

        Without ``within`` at most about :data:`CAP` people are read; the flag
        says the answer was cut short.
        """

    def intersect(
        self, constraints: Sequence[Constraint], subtree: Collection[int] | None
    ) -> tuple[set[int], bool]:
        """People every constraint holds for (and in a unit of ``subtree``), at most CAP."""

    def in_units(self, ids: Collection[int], subtree: Collection[int]) -> set[int]:
        """Those of ``ids`` who are members of a unit in ``subtree``."""

    def exact_names(
        self, pairs: Sequence[tuple[str | None, str | None]], include_inactive: bool, cap: int
    ) -> set[int]:
        """People whose folded (first, last) name equals a pair (None: any), ``cap`` per pair."""

    def names(self, ids: Collection[int], include_inactive: bool) -> list[NameRow]:
        """Names of ``ids`` (active ones unless ``include_inactive``)."""

    def with_name_tokens(self, words: Sequence[str], ids: Collection[int], cap: int) -> list[int]:
        """Those of ``ids`` with one of the folded ``words`` as a whole name token."""

    def with_name_keys(self, keys: Sequence[str], cap: int) -> list[int]:
        """People with one of the phonetic ``keys`` exactly, in a name (at most ``cap``)."""

    def in_name_order(self, ids: Collection[int], limit: int) -> list[int]:
        """The first ``limit`` of ``ids`` by (last name, first name)."""

    def listing(
        self, subtree: Collection[int] | None, include_inactive: bool, limit: int
    ) -> list[int]:
        """The first ``limit`` people (in ``subtree``) by (last name, first name, id)."""
