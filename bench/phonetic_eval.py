"""Precision and recall of Swedish name matching on the evaluation set.

Usage: ``.venv/bin/python bench/phonetic_eval.py [--misses]``

Every pair of names in tests/unit/directory/data/swedish_name_variants.csv is
judged: a pair is *positive* when both names are in the same ``same`` group,
*negative* otherwise (every cross-group pair, and the listed ``different``
pairs). A method predicts *same* when its keys are equal. Baselines: American
Soundex (implemented below, on ASCII-folded names) and, when the ``jellyfish``
package is installed, its Metaphone and NYSIIS.

The ranking matcher is judged twice: by its pair decisions (a match of any
kind that is not a type-ahead completion), and as a ranker: for every name as
a query, the mean average precision of its ranked results over all other
names (variants should come first).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vaxla.directory.phonetic import (
    MatchKind,
    NameMatcher,
    analyse_name,
    fold_name,
    phonetic_key,
)

DATA = (
    Path(__file__).resolve().parent.parent / "tests/unit/directory/data/swedish_name_variants.csv"
)

_SOUNDEX_CODES = {
    **dict.fromkeys("BFPV", "1"),
    **dict.fromkeys("CGJKQSXZ", "2"),
    **dict.fromkeys("DT", "3"),
    "L": "4",
    **dict.fromkeys("MN", "5"),
    "R": "6",
}


def soundex(name: str) -> str:
    """American Soundex (H and W do not separate equal codes)."""
    letters = fold_name(name).upper()
    if not letters:
        return ""
    out = letters[0]
    last = _SOUNDEX_CODES.get(letters[0], "")
    for ch in letters[1:]:
        code = _SOUNDEX_CODES.get(ch, "")
        if code and code != last:
            out += code
        if ch not in "HW":
            last = code
    return (out + "000")[:4]


@dataclass(frozen=True)
class EvalSet:
    groups: list[list[str]]
    different: list[tuple[str, str]]

    @property
    def names(self) -> list[str]:
        seen = dict.fromkeys(n for g in self.groups for n in g)
        for a, b in self.different:
            seen.setdefault(a)
            seen.setdefault(b)
        return list(seen)

    def same(self, a: str, b: str) -> bool:
        return any(a in g and b in g for g in self.groups)


def load(path: Path = DATA, note: str = "") -> EvalSet:
    """Read the set; with ``note``, only the rows whose note contains it."""
    groups: list[list[str]] = []
    different: list[tuple[str, str]] = []
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            if note not in row["note"]:
                continue
            names = row["names"].split("|")
            if row["relation"] == "same":
                groups.append(names)
            else:
                a, b = names
                different.append((a, b))
    return EvalSet(groups, different)


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def judge(
    data: EvalSet, predict: Callable[[str, str], bool], misses: list[str] | None = None
) -> Counts:
    counts = Counts()
    for a, b in itertools.combinations(data.names, 2):
        truth, guess = data.same(a, b), predict(a, b)
        if truth and guess:
            counts.tp += 1
        elif truth:
            counts.fn += 1
            if misses is not None:
                misses.append(f"  missed   {a} / {b}")
        elif guess:
            counts.fp += 1
            if misses is not None:
                misses.append(f"  confused {a} / {b}")
        else:
            counts.tn += 1
    return counts


def key_method(encode: Callable[[str], str]) -> Callable[[str, str], bool]:
    cache: dict[str, str] = {}

    def predict(a: str, b: str) -> bool:
        for n in (a, b):
            if n not in cache:
                cache[n] = encode(n)
        return cache[a] == cache[b] != ""

    return predict


def matcher_method(matcher: NameMatcher, strict: bool) -> Callable[[str, str], bool]:
    def predict(a: str, b: str) -> bool:
        for q, c in ((a, b), (b, a)):
            found = matcher.match(q, c)
            if found is None or found.completion:
                continue
            if not strict or found.kind >= MatchKind.PHONETIC:
                return True
        return False

    return predict


def mean_average_precision(data: EvalSet, score: Callable[[str, str], float]) -> float:
    """MAP over all queries: rank every other name by ``score``, variants are relevant."""
    names = data.names
    total, queries = 0.0, 0
    for q in names:
        relevant = {n for n in names if n != q and data.same(q, n)}
        if not relevant:
            continue
        ranked = sorted((n for n in names if n != q), key=lambda n: score(q, n), reverse=True)
        hits, precision_sum = 0, 0.0
        for position, n in enumerate(ranked, start=1):
            if n in relevant:
                hits += 1
                precision_sum += hits / position
        total += precision_sum / len(relevant)
        queries += 1
    return total / queries


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--misses", action="store_true", help="list the wrong pair decisions")
    parser.add_argument(
        "--subset", default="", help="only rows whose note contains this text (e.g. held-out)"
    )
    args = parser.parse_args()

    data = load(note=args.subset)
    names = data.names
    pairs = len(names) * (len(names) - 1) // 2
    positives = sum(1 for a, b in itertools.combinations(names, 2) if data.same(a, b))
    print(
        f"{len(data.groups)} variant groups, {len(data.different)} must-not-match pairs, "
        f"{len(names)} names, {pairs} pairs ({positives} positive)\n"
    )

    methods: list[tuple[str, Callable[[str, str], bool]]] = [
        ("Soundex (baseline)", key_method(soundex)),
    ]
    try:
        import jellyfish

        methods.append(("Metaphone (jellyfish)", key_method(lambda n: jellyfish.metaphone(n))))
        methods.append(("NYSIIS (jellyfish)", key_method(lambda n: jellyfish.nysiis(n))))
    except ImportError:
        print("(jellyfish not installed: Metaphone and NYSIIS baselines skipped)\n")
    matcher = NameMatcher()
    methods += [
        ("vaxla phonetic_key", key_method(phonetic_key)),
        ("vaxla matcher, phonetic or better", matcher_method(matcher, strict=True)),
        ("vaxla matcher, any kind incl. fuzzy", matcher_method(matcher, strict=False)),
    ]

    print(f"{'method':<38} {'precision':>9} {'recall':>7} {'F1':>6} {'FP':>4} {'FN':>4}")
    print("-" * 72)
    all_misses: dict[str, list[str]] = {}
    for label, predict in methods:
        misses: list[str] = []
        c = judge(data, predict, misses)
        all_misses[label] = misses
        print(f"{label:<38} {c.precision:>9.3f} {c.recall:>7.3f} {c.f1:>6.3f} {c.fp:>4} {c.fn:>4}")

    forms = {n: analyse_name(n) for n in names}

    def matcher_score(q: str, c: str) -> float:
        found = matcher.match(forms[q], forms[c])
        return 0.0 if found is None else int(found.kind) + found.score

    def soundex_then_edit(q: str, c: str) -> float:
        from rapidfuzz import fuzz

        same_code = soundex(q) == soundex(c)
        return float(same_code) + fuzz.ratio(fold_name(q), fold_name(c)) / 100.0

    print("\nranking (each name as query over all other names), mean average precision")
    print(
        f"  Soundex, then edit distance     {mean_average_precision(data, soundex_then_edit):.3f}"
    )
    print(f"  vaxla NameMatcher               {mean_average_precision(data, matcher_score):.3f}")
    whole = NameMatcher(prefix=False)

    def whole_word_score(q: str, c: str) -> float:
        found = whole.match(forms[q], forms[c])
        return 0.0 if found is None else int(found.kind) + found.score

    print(f"  vaxla NameMatcher(prefix=False) {mean_average_precision(data, whole_word_score):.3f}")

    must_not = [(a, b) for a, b in data.different]
    key_broken = [f"{a}/{b}" for a, b in must_not if phonetic_key(a) == phonetic_key(b)]
    print(f"\nmust-not-match pairs with equal vaxla keys: {len(key_broken)} of {len(must_not)}")
    if args.misses:
        for label, misses in all_misses.items():
            if misses:
                print(f"\n{label}:")
                print("\n".join(misses))
    return 0


if __name__ == "__main__":
    sys.exit(main())
