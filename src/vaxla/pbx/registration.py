"""RFC 3261 §10.3 binding rules as a pure function (no I/O, time passed in)."""

from __future__ import annotations

from dataclasses import dataclass, field

from vaxla.pbx.location import Contact
from vaxla.sip.message import Request
from vaxla.sip.transaction import Peer
from vaxla.sip.uri import AbsoluteURI, parse_uri


@dataclass(slots=True)
class RegisterPlan:
    status: int = 200
    reason: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    upsert: list[Contact] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ExpiryPolicy:
    min_expires: int = 60
    max_expires: int = 3600
    default_expires: int = 3600


def _same_contact(a: str, b: str) -> bool:
    if a == b:
        return True
    ua, ub = parse_uri(a), parse_uri(b)
    if isinstance(ua, AbsoluteURI) or isinstance(ub, AbsoluteURI):
        return str(ua) == str(ub)
    return ua.equivalent(ub)


def plan_register(
    aor: str,
    request: Request,
    peer: Peer,
    existing: dict[str, Contact],
    now: float,
    policy: ExpiryPolicy,
) -> RegisterPlan:
    """Work out what a REGISTER changes; the caller persists and answers."""
    plan = RegisterPlan()
    call_id = request.call_id
    cseq = request.cseq.seq
    contacts = request.contacts
    header_expires = request.expires
    user_agent = request.headers.get("User-Agent") or ""

    if not contacts:  # a query: answer with the current bindings
        return plan

    if any(isinstance(c.uri, AbsoluteURI) and c.uri.text == "*" for c in contacts):
        if len(contacts) != 1 or header_expires != 0:
            return RegisterPlan(400, "Contact * needs Expires: 0 and no other contact")
        for uri, b in existing.items():
            if b.call_id == call_id and cseq <= b.cseq:
                continue
            plan.remove.append(uri)
        return plan

    for c in contacts:
        uri = str(c.uri)
        expires_param = c.params.get("expires")
        try:
            if expires_param is not None:
                expires = int(expires_param)
            elif header_expires is not None:
                expires = header_expires
            else:
                expires = policy.default_expires
        except ValueError:
            expires = policy.default_expires
        if 0 < expires < policy.min_expires:
            return RegisterPlan(
                423, "Interval Too Brief", [("Min-Expires", str(policy.min_expires))]
            )
        expires = min(expires, policy.max_expires)
        match = next((u for u in existing if _same_contact(u, uri)), None)
        if match is not None:
            old = existing[match]
            if old.call_id == call_id and cseq <= old.cseq:
                return RegisterPlan(400, "Out-of-order REGISTER (CSeq not higher)")
            if expires == 0:
                plan.remove.append(match)
                continue
            uri = match
        elif expires == 0:
            continue
        plan.upsert.append(
            Contact(
                aor=aor,
                uri=uri,
                expires_at=now + expires,
                call_id=call_id,
                cseq=cseq,
                q=c.params.get("q"),
                peer=peer,
                user_agent=user_agent,
            )
        )
    return plan


def contact_headers(contacts: list[Contact], now: float) -> list[tuple[str, str]]:
    """The Contact values of a 200 OK to REGISTER (every current binding)."""
    out = []
    for c in contacts:
        value = f"<{c.uri}>;expires={c.remaining(now)}"
        if c.q is not None:
            value += f";q={c.q}"
        out.append(("Contact", value))
    return out
