"""Swedish numbers in words, for prompts ("nummerpaket", R97.10), sans-IO.

Swedish "one" agrees with the noun it counts: *en* before common-gender
(utrum) nouns — "en handläggare", "en minut" — and *ett* before neuter
nouns and when a number is named on its own — "ett samtal", "nummer ett",
counting "ett, två, tre". The same holds at the end of compounds
("tjugoen minuter", "tjugoett samtal"), and the large units carry their own
gender: *tusen* and *hundra* are neuter ("ett tusen"), *miljon* and
*miljard* are common ("en miljon", plural "miljoner").

Words are separated by spaces where a speech synthesiser reads them more
clearly that way ("ett tusen tjugoett"); tens and units are one word.
"""

from __future__ import annotations

from typing import Literal

Gender = Literal["neuter", "common"]

_UNITS = ["noll", "ett", "två", "tre", "fyra", "fem", "sex", "sju", "åtta", "nio"]
_TEENS = [
    "tio",
    "elva",
    "tolv",
    "tretton",
    "fjorton",
    "femton",
    "sexton",
    "sjutton",
    "arton",
    "nitton",
]
_TENS = ["", "", "tjugo", "trettio", "fyrtio", "femtio", "sextio", "sjuttio", "åttio", "nittio"]
_ORDINALS = [
    "nollte",
    "första",
    "andra",
    "tredje",
    "fjärde",
    "femte",
    "sjätte",
    "sjunde",
    "åttonde",
    "nionde",
    "tionde",
    "elfte",
    "tolfte",
]


def _one(gender: Gender) -> str:
    return "en" if gender == "common" else "ett"


def _below_100(n: int, gender: Gender) -> str:
    if n < 10:
        return _one(gender) if n == 1 else _UNITS[n]
    if n < 20:
        return _TEENS[n - 10]
    tens, unit = divmod(n, 10)
    if unit == 0:
        return _TENS[tens]
    return _TENS[tens] + (_one(gender) if unit == 1 else _UNITS[unit])


def _below_1000(n: int, gender: Gender) -> list[str]:
    hundreds, rest = divmod(n, 100)
    words: list[str] = []
    if hundreds:
        words += [_below_100(hundreds, "neuter"), "hundra"]  # "hundra" is neuter
    if rest:
        words.append(_below_100(rest, gender))
    return words


def number_words(n: int, gender: Gender = "neuter") -> str:
    """``n`` in words; ``gender`` is that of the noun counted (or neuter
    when the number stands alone): ``number_words(1, "common") == "en"``."""
    if n < 0:
        return "minus " + number_words(-n, gender)
    if n == 0:
        return "noll"
    if n >= 10**12:
        raise ValueError("numbers up to 999 999 999 999")
    words: list[str] = []
    milliards, rest = divmod(n, 10**9)
    millions, rest = divmod(rest, 10**6)
    thousands, rest = divmod(rest, 1000)
    if milliards:
        words += [*_below_1000(milliards, "common"), "miljard" if milliards == 1 else "miljarder"]
    if millions:
        words += [*_below_1000(millions, "common"), "miljon" if millions == 1 else "miljoner"]
    if thousands:
        words += [*_below_1000(thousands, "neuter"), "tusen"]
    if rest:
        words += _below_1000(rest, gender)
    return " ".join(words)


def digits_words(digits: str) -> str:
    """A digit string read digit by digit (a phone number, an extension):
    ``"1001"`` -> ``"ett noll noll ett"``. ``*`` is "stjärna", ``#`` "fyrkant"."""
    names = {str(i): w for i, w in enumerate(_UNITS)} | {"*": "stjärna", "#": "fyrkant"}
    out = []
    for ch in digits:
        if ch in names:
            out.append(names[ch])
        elif ch == "+":
            out.append("plus")
        else:
            raise ValueError(f"not a dialable character: {ch!r}")
    return " ".join(out)


def count_phrase(n: int, singular: str, plural: str, gender: Gender) -> str:
    """``count_phrase(1, "handläggare", "handläggare", "common") == "en handläggare"``."""
    return f"{number_words(n, gender)} {singular if n == 1 else plural}"


def queue_position(n: int) -> str:
    """Place in a queue: "nummer ett" (the number named: neuter)."""
    return f"nummer {number_words(n, 'neuter')}"


def ordinal_words(n: int) -> str:
    """Ordinals 0-12 as words ("första", "andra", ...); larger as "nummer N"."""
    if 0 <= n < len(_ORDINALS):
        return _ORDINALS[n]
    return queue_position(n)
