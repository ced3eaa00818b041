"""RFC 3261 §10.3 binding rules (pure logic)."""

from __future__ import annotations

from vaxla.pbx.location import Contact
from vaxla.pbx.registration import ExpiryPolicy, contact_headers, plan_register
from vaxla.sip.message import Request, parse_message
from vaxla.sip.transaction import Peer

PEER = Peer("udp", "198.51.100.7", 40123)
POLICY = ExpiryPolicy(min_expires=60, max_expires=3600, default_expires=1800)


def register(
    *contacts: str, expires: int | None = None, call_id: str = "c1", cseq: int = 1
) -> Request:
    lines = [
        "REGISTER sip:vaxla.example SIP/2.0",
        "Via: SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bK776asdhds;rport",
        "Max-Forwards: 70",
        "From: <sip:1000@vaxla.example>;tag=a73kszlfl",
        "To: <sip:1000@vaxla.example>",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} REGISTER",
        "User-Agent: baresip",
    ]
    lines += [f"Contact: {c}" for c in contacts]
    if expires is not None:
        lines.append(f"Expires: {expires}")
    msg = parse_message(("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode())
    assert isinstance(msg, Request)
    return msg


def existing(
    uri: str, call_id: str = "c1", cseq: int = 1, expires_at: float = 2000.0
) -> dict[str, Contact]:
    return {uri: Contact("1000", uri, expires_at, call_id, cseq, None, PEER)}


def test_new_binding_uses_header_expires_and_source_peer() -> None:
    plan = plan_register(
        "1000", register("<sip:1000@10.0.0.5:5062>", expires=600), PEER, {}, 100.0, POLICY
    )
    assert plan.status == 200
    [c] = plan.upsert
    assert c.uri == "sip:1000@10.0.0.5:5062"
    assert c.expires_at == 700.0
    assert c.peer == PEER  # where it came from, not what the Contact claims (NAT)
    assert c.user_agent == "baresip"


def test_contact_expires_param_wins_and_max_is_capped() -> None:
    plan = plan_register(
        "1000",
        register("<sip:a@10.0.0.5>;expires=120", "<sip:b@10.0.0.6>;expires=99999", expires=600),
        PEER,
        {},
        0.0,
        POLICY,
    )
    assert [(c.uri, c.expires_at) for c in plan.upsert] == [
        ("sip:a@10.0.0.5", 120.0),
        ("sip:b@10.0.0.6", 3600.0),
    ]


def test_default_expiry_when_none_given() -> None:
    plan = plan_register("1000", register("<sip:a@10.0.0.5>"), PEER, {}, 0.0, POLICY)
    assert plan.upsert[0].expires_at == 1800.0


def test_too_brief_gets_423_with_min_expires() -> None:
    plan = plan_register("1000", register("<sip:a@10.0.0.5>", expires=30), PEER, {}, 0.0, POLICY)
    assert plan.status == 423
    assert ("Min-Expires", "60") in plan.headers
    assert plan.upsert == []


def test_unregister_one_contact() -> None:
    plan = plan_register(
        "1000",
        register("<sip:a@10.0.0.5>", expires=0, cseq=2),
        PEER,
        existing("sip:a@10.0.0.5"),
        0.0,
        POLICY,
    )
    assert plan.status == 200 and plan.remove == ["sip:a@10.0.0.5"] and plan.upsert == []


def test_star_removes_all_but_needs_expires_zero() -> None:
    bindings = {
        **existing("sip:a@10.0.0.5", call_id="x"),
        **existing("sip:b@10.0.0.6", call_id="y"),
    }
    plan = plan_register("1000", register("*", expires=0, call_id="z"), PEER, bindings, 0.0, POLICY)
    assert sorted(plan.remove) == ["sip:a@10.0.0.5", "sip:b@10.0.0.6"]
    bad = plan_register("1000", register("*", expires=60), PEER, bindings, 0.0, POLICY)
    assert bad.status == 400
    mixed = plan_register(
        "1000", register("*", "<sip:c@10.0.0.7>", expires=0), PEER, bindings, 0.0, POLICY
    )
    assert mixed.status == 400


def test_out_of_order_cseq_from_same_call_id_is_refused() -> None:
    plan = plan_register(
        "1000",
        register("<sip:a@10.0.0.5>", cseq=3),
        PEER,
        existing("sip:a@10.0.0.5", call_id="c1", cseq=5),
        0.0,
        POLICY,
    )
    assert plan.status == 400 and plan.upsert == []


def test_refresh_from_another_call_id_updates() -> None:
    plan = plan_register(
        "1000",
        register("<sip:a@10.0.0.5>", call_id="new", cseq=1, expires=300),
        PEER,
        existing("sip:a@10.0.0.5", call_id="old", cseq=9),
        10.0,
        POLICY,
    )
    assert plan.status == 200 and plan.upsert[0].call_id == "new"
    assert plan.upsert[0].expires_at == 310.0


def test_equivalent_uri_updates_the_existing_binding() -> None:
    # RFC 3261 §19.1.4: host is case-insensitive
    plan = plan_register(
        "1000",
        register("<sip:a@PHONE.example>", cseq=2, expires=300),
        PEER,
        existing("sip:a@phone.example"),
        0.0,
        POLICY,
    )
    assert [c.uri for c in plan.upsert] == ["sip:a@phone.example"]


def test_query_without_contact_changes_nothing() -> None:
    plan = plan_register("1000", register(), PEER, existing("sip:a@10.0.0.5"), 0.0, POLICY)
    assert plan.status == 200 and not plan.upsert and not plan.remove


def test_contact_headers_list_remaining_time() -> None:
    contacts = list(existing("sip:a@10.0.0.5", expires_at=130.5).values())
    assert contact_headers(contacts, 100.0) == [("Contact", "<sip:a@10.0.0.5>;expires=30")]
