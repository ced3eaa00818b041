"""Call forwarding (vidarekoppling): the rules, with no I/O.

Each extension may forward its calls in four ways, the ETSI/Swedish set a
phone user knows from ``*21*`` codes:

=================  ===========  ==========================================
kind               ETSI code    when
=================  ===========  ==========================================
``always``         CFU (21)     every call, before any phone rings
``busy``           CFB (67)     the phone answers busy (486/600) or rejects (603)
``no-answer``      CFNA (61)    nobody answers within ``no_answer_seconds``
                                (or the phone answers 408/480)
``unreachable``    CFNR (62)    no phone of the extension is registered
=================  ===========  ==========================================

A target is another extension (or a number Växla answers itself, such as
voicemail later) or an external number, kept in E.164. External numbers are
stored and shown, but Växla has no trunk yet: a call that reaches an external
forwarding target fails with 480 and a ``Warning`` saying so.

Loops are stopped, not followed: a forwarding step is refused when its target
was already part of the call's path (A→B→A) or when the call has been
forwarded ``MAX_HOPS`` times, counting the ``Diversion`` headers (RFC 5806)
it arrived with. The call then rings where the chain stopped.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from vaxla.errors import InvalidInput, VaxlaError
from vaxla.sip.errors import SipParseError
from vaxla.sip.uri import NameAddr, SipURI, split_list

MAX_HOPS = 5
DEFAULT_NO_ANSWER_SECONDS = 20
MIN_NO_ANSWER_SECONDS = 3
MAX_NO_ANSWER_SECONDS = 180


class ForwardKind(enum.StrEnum):
    ALWAYS = "always"
    BUSY = "busy"
    NO_ANSWER = "no-answer"
    UNREACHABLE = "unreachable"


#: In the order they are shown and looked at.
KINDS: tuple[ForwardKind, ...] = tuple(ForwardKind)

#: RFC 5806 §2 ``diversion-reason`` of each kind.
DIVERSION_REASON: dict[ForwardKind, str] = {
    ForwardKind.ALWAYS: "unconditional",
    ForwardKind.BUSY: "user-busy",
    ForwardKind.NO_ANSWER: "no-answer",
    ForwardKind.UNREACHABLE: "unavailable",
}

#: ETSI star-code service numbers (``*21*target#``) of each kind.
STAR_CODES: dict[str, ForwardKind] = {
    "21": ForwardKind.ALWAYS,
    "67": ForwardKind.BUSY,
    "61": ForwardKind.NO_ANSWER,
    "62": ForwardKind.UNREACHABLE,
}


# ---------------------------------------------------------------- errors


class ForwardingToSelf(VaxlaError):
    status = 400
    error_id = "forwarding-to-self"


class ForwardingTargetInvalid(InvalidInput):
    error_id = "forwarding-target-invalid"


class ForwardingTargetUnknown(InvalidInput):
    error_id = "forwarding-target-unknown"


# ---------------------------------------------------------------- targets

_INTERNAL = re.compile(r"^[0-9]{2,15}$")
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_NATIONAL = re.compile(r"^0[1-9][0-9]{6,11}$")
_SEPARATORS = re.compile(r"[\s\-().]")


def normalise_target(raw: str, is_internal: Callable[[str], bool]) -> str:
    """The target as stored: an extension as dialled, an external number in E.164.

    Swedish national numbers (``070-123 45 67``) become ``+46701234567`` and
    ``00`` prefixes ``+``. Raises :class:`ForwardingTargetInvalid` for text
    that is no number and :class:`ForwardingTargetUnknown` for a short number
    that is not an extension.
    """
    text = _SEPARATORS.sub("", raw.strip())
    if not text or not re.fullmatch(r"\+?[0-9]+", text):
        raise ForwardingTargetInvalid("a forwarding target is a phone number", target=raw)
    if _INTERNAL.match(text) and is_internal(text):
        return text
    if text.startswith("00"):
        text = "+" + text[2:]
    elif _NATIONAL.match(text):
        text = "+46" + text[1:]
    if _E164.match(text):
        return text
    raise ForwardingTargetUnknown(f"{raw} is neither an extension nor a phone number", target=raw)


def is_external(target: str) -> bool:
    """External numbers are stored in E.164 (``+``); extensions never are."""
    return target.startswith("+")


# ---------------------------------------------------------------- settings


@dataclass(frozen=True, slots=True)
class ForwardingRule:
    kind: ForwardKind
    target: str
    enabled: bool = True

    @property
    def external(self) -> bool:
        return is_external(self.target)


@dataclass(frozen=True, slots=True)
class ForwardingSettings:
    """Every forwarding rule of one extension (enabled or kept for later)."""

    extension: str
    rules: tuple[ForwardingRule, ...] = ()
    no_answer_seconds: int = DEFAULT_NO_ANSWER_SECONDS

    def rule(self, kind: ForwardKind) -> ForwardingRule | None:
        """The enabled rule of ``kind``, if any."""
        for r in self.rules:
            if r.kind is kind and r.enabled:
                return r
        return None

    def active(self) -> tuple[ForwardingRule, ...]:
        """The enabled rules, unconditional first (what a status shows)."""
        return tuple(r for k in KINDS if (r := self.rule(k)) is not None)


def check_rules(extension: str, rules: Sequence[ForwardingRule]) -> None:
    """Refuse what can never work: one rule per kind, never to oneself."""
    kinds = [r.kind for r in rules]
    if len(set(kinds)) != len(kinds):
        raise InvalidInput("one rule per kind", field="kind")
    for r in rules:
        if r.target == extension:
            raise ForwardingToSelf(
                f"extension {extension} cannot forward to itself", kind=r.kind.value
            )


# ---------------------------------------------------------------- conditions


def kind_for_failure(status: int) -> ForwardKind | None:
    """Which conditional forwarding a final failure of the callee's phones triggers."""
    if status in (486, 600, 603):
        return ForwardKind.BUSY
    if status in (408, 480):
        return ForwardKind.NO_ANSWER
    return None


# ---------------------------------------------------------------- hops and loops


@dataclass(frozen=True, slots=True)
class Diversion:
    """One forwarding step of a call: ``diverter``'s rule sent it to ``target``."""

    diverter: str
    target: str
    kind: ForwardKind

    def header(self, host: str) -> str:
        """The RFC 5806 ``Diversion`` header value naming the diverting extension."""
        reason = DIVERSION_REASON[self.kind]
        return f"<sip:{self.diverter}@{host}>;reason={reason};counter=1;privacy=off"


def diversion_hops(values: Iterable[str]) -> tuple[int, frozenset[str]]:
    """Hops already made and the diverting users named by received ``Diversion``
    headers (RFC 5806: ``counter`` per entry, 1 when absent). Entries that do
    not parse count as one hop each."""
    hops = 0
    users: set[str] = set()
    for value in values:
        for item in split_list(value):
            try:
                addr = NameAddr.parse(item)
            except SipParseError:
                hops += 1
                continue
            counter = addr.params.get("counter") or "1"
            hops += min(int(counter), MAX_HOPS) if counter.isdigit() else 1
            if isinstance(addr.uri, SipURI) and addr.uri.user:
                users.add(addr.uri.user)
    return hops, frozenset(users)


class Refusal(enum.StrEnum):
    LOOP = "loop"
    MAX_HOPS = "max-hops"


@dataclass(frozen=True, slots=True)
class Step:
    """What one rule does to a call: forward (``diversion``), or not (``refused`` why)."""

    diversion: Diversion | None = None
    refused: Refusal | None = None


@dataclass(frozen=True, slots=True)
class CallPath:
    """Where a call has been: the number dialled, the forwarding steps taken,
    and what the call brought along (hops and diverters of other systems)."""

    dialled: str
    diversions: tuple[Diversion, ...] = ()
    prior_hops: int = 0
    prior_diverters: frozenset[str] = frozenset()

    @property
    def current(self) -> str:
        return self.diversions[-1].target if self.diversions else self.dialled

    @property
    def hops(self) -> int:
        return self.prior_hops + len(self.diversions)

    def visited(self) -> set[str]:
        seen = {self.dialled, *self.prior_diverters}
        for d in self.diversions:
            seen.update((d.diverter, d.target))
        return seen

    def then(self, d: Diversion) -> CallPath:
        return CallPath(self.dialled, (*self.diversions, d), self.prior_hops, self.prior_diverters)


def next_step(
    settings: ForwardingSettings | None,
    kind: ForwardKind,
    path: CallPath,
    max_hops: int = MAX_HOPS,
) -> Step:
    """Whether the current callee's rule of ``kind`` forwards the call, and where."""
    rule = settings.rule(kind) if settings is not None else None
    if settings is None or rule is None:
        return Step()
    if rule.target in path.visited() or rule.target == settings.extension:
        return Step(refused=Refusal.LOOP)
    if path.hops >= max_hops:
        return Step(refused=Refusal.MAX_HOPS)
    return Step(Diversion(settings.extension, rule.target, kind))


@dataclass(frozen=True, slots=True)
class Resolution:
    """Where a call rings after following unconditional and not-reachable forwarding."""

    path: CallPath
    refused: Refusal | None = None
    steps: tuple[Diversion, ...] = field(default=())

    @property
    def target(self) -> str:
        return self.path.current


def resolve(
    table: Mapping[str, ForwardingSettings],
    path: CallPath,
    reachable: Callable[[str], bool],
    max_hops: int = MAX_HOPS,
) -> Resolution:
    """Follow CFU (and CFNR where no phone is registered) from the path's
    current callee, until a number rings, a loop closes, or hops run out."""
    steps: list[Diversion] = []
    refused: Refusal | None = None
    while True:
        number = path.current
        settings = table.get(number)
        if settings is None:
            break
        step = next_step(settings, ForwardKind.ALWAYS, path, max_hops)
        if step.diversion is None and step.refused is None and not reachable(number):
            step = next_step(settings, ForwardKind.UNREACHABLE, path, max_hops)
        if step.diversion is None:
            refused = step.refused
            break
        steps.append(step.diversion)
        path = path.then(step.diversion)
    return Resolution(path, refused, tuple(steps))


# ---------------------------------------------------------------- star codes


@dataclass(frozen=True, slots=True)
class StarCode:
    """A forwarding code dialled on a phone (ETSI, as Swedish operators use them).

    ``*21*1003#`` set and enable CFU to 1003; ``*21#`` enable it again with
    the stored target; ``#21#`` disable it (the target is kept); ``##21#``
    erase it; ``#002#`` disable every forwarding, ``##002#`` erase every one.
    67/61/62: busy, no answer, not reachable.
    """

    action: str  # set | enable | disable | erase | disable-all | erase-all
    kind: ForwardKind | None
    target: str | None = None


_STAR = re.compile(r"^(\*|#|##)(21|67|61|62)(?:\*([+0-9]{2,20}))?#$")


def parse_star_code(dialled: str) -> StarCode | None:
    """The forwarding code in a dialled number, or None when it is none."""
    if dialled == "#002#":
        return StarCode("disable-all", None)
    if dialled == "##002#":
        return StarCode("erase-all", None)
    m = _STAR.match(dialled)
    if m is None:
        return None
    prefix, service, target = m.groups()
    kind = STAR_CODES[service]
    if prefix == "*":
        return StarCode("set" if target else "enable", kind, target)
    if target:
        return None
    return StarCode("disable" if prefix == "#" else "erase", kind)
