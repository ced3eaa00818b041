"""Tests for vaxla.sip.auth (digest authentication)."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vaxla.sip.auth import (
    AuthResult,
    DigestAuthenticator,
    DigestCredentials,
    build_authorization,
    compute_ha1,
    parse_challenge,
)
from vaxla.sip.errors import SipParseError

REALM = "pbx.example.se"
SECRET = b"0123456789abcdef0123456789abcdef"
URI = "sip:pbx.example.se"
USERS = {"1001": "hemligt", "1002": 'Lösen,"ord"\\x'}


def lookup(username: str, realm: str, algorithm: str) -> str | None:
    password = USERS.get(username)
    if password is None:
        return None
    return compute_ha1(username, realm, password, algorithm)


def make_auth(ttl: float = 300.0, **kwargs: int) -> DigestAuthenticator:
    return DigestAuthenticator(REALM, SECRET, nonce_ttl=ttl, **kwargs)


# --------------------------------------------------------------------------- RFC vectors


def test_rfc2617_section_3_5_example() -> None:
    # RFC 2617 §3.5: GET /dir/index.html, Mufasa / "Circle Of Life".
    value = (
        'Digest username="Mufasa", realm="testrealm@host.com", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", '
        'qop=auth, nc=00000001, cnonce="0a4f113b", '
        'response="6629fae49393a05397450978507c4ef1", '
        'opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    creds = DigestCredentials.parse(value)
    assert creds.username == "Mufasa"
    assert creds.realm == "testrealm@host.com"
    assert creds.nc == "00000001"
    assert creds.nc_value == 1
    assert creds.opaque == "5ccc069c403ebaf9f0171e9517f40e41"
    assert creds.algorithm == "MD5"

    challenge = (
        'Digest realm="testrealm@host.com", qop="auth,auth-int", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", '
        'opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    built = build_authorization(
        challenge, "GET", "/dir/index.html", "Mufasa", "Circle Of Life", cnonce="0a4f113b"
    )
    built_creds = DigestCredentials.parse(built)
    assert built_creds.response == "6629fae49393a05397450978507c4ef1"
    assert built_creds.opaque == "5ccc069c403ebaf9f0171e9517f40e41"
    assert built_creds.qop == "auth"


RFC7616_NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
RFC7616_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
RFC7616_OPAQUE = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        # RFC 7616 §3.9.1, first example (MD5).
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        # RFC 7616 §3.9.1, second example (SHA-256).
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_rfc7616_section_3_9_1_examples(algorithm: str, expected: str) -> None:
    challenge = (
        f'Digest realm="http-auth@example.org", qop="auth, auth-int", '
        f"algorithm={algorithm}, "
        f'nonce="{RFC7616_NONCE}", opaque="{RFC7616_OPAQUE}"'
    )
    parsed = parse_challenge(challenge)
    assert parsed.qop == ("auth", "auth-int")
    assert parsed.algorithm == algorithm
    built = build_authorization(
        challenge, "GET", "/dir/index.html", "Mufasa", "Circle of Life", cnonce=RFC7616_CNONCE
    )
    creds = DigestCredentials.parse(built)
    assert creds.response == expected
    assert creds.algorithm == algorithm
    assert creds.nc == "00000001"
    assert creds.cnonce == RFC7616_CNONCE


def test_compute_ha1_md5_and_sha256_differ_and_sess_equals_base() -> None:
    md5 = compute_ha1("Mufasa", "testrealm@host.com", "Circle Of Life")
    assert md5 == "939e7578ed9e3c518a452acee763bce9"  # RFC 2617 §3.5 HA1 (well known)
    sha = compute_ha1("Mufasa", "testrealm@host.com", "Circle Of Life", "SHA-256")
    assert len(sha) == 64
    assert compute_ha1("Mufasa", "testrealm@host.com", "Circle Of Life", "md5-sess") == md5
    with pytest.raises(ValueError):
        compute_ha1("a", "b", "c", "SHA-512-256-unknown")


# --------------------------------------------------------------------------- parsing


def test_parse_escapes_whitespace_unknown_params_and_unquoted_tokens() -> None:
    value = (
        'Digest   username = "a\\"b\\\\c" ,realm="r, with comma",\t'
        'nonce="n", uri="sip:x@y", response="abc", algorithm=sha-256,'
        ',  qop=auth, nc=0000000a, cnonce="c", future-param=token,'
        ' other="x\\y"'
    )
    creds = DigestCredentials.parse(value)
    assert creds.username == 'a"b\\c'
    assert creds.realm == "r, with comma"
    assert creds.algorithm == "SHA-256"
    assert creds.nc_value == 10
    assert creds.params["future-param"] == "token"
    assert creds.params["other"] == "xy"


def test_parse_username_star() -> None:
    value = 'Digest username*=UTF-8\'\'J%C3%A4s%C3%B6, realm="r", nonce="n", uri="u", response="x"'
    assert DigestCredentials.parse(value).username == "Jäsö"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "Digest",
        "Basic dXNlcjpwYXNz",
        'Digest username="a"',  # missing realm, nonce, uri, response
        'Digest username="a, realm="r", nonce="n", uri="u", response="x"',  # unbalanced quote
        'Digest username="a" realm="r", nonce="n", uri="u", response="x"',  # missing comma
        'Digest username="a", realm="r", nonce="n", uri="u", response="x", username="b"',
        'Digest username="a", realm="r", nonce="n", uri="u", response="x", =x',
        'Digest username="a", realm="r", nonce="n", uri="u", response="x", foo',
        'Digest username="a", realm="r", nonce="n", uri="u", response="x", foo=',
        'Digest username="a", realm="r", nonce="n", uri="u", response="x", qop=auth',
        'Digest username="a", realm="r", nonce="n", uri="u", response="x", '
        'qop=auth, nc=xyz, cnonce="c"',
        '"Digest" username="a"',
        'Digest username="a", realm="r", nonce="n", uri="u", response="x\\',
    ],
)
def test_parse_rejects_garbage(value: str) -> None:
    with pytest.raises(SipParseError):
        DigestCredentials.parse(value)


def test_parse_challenge_fields() -> None:
    c = parse_challenge(
        'digest realm="r", nonce="n", algorithm=MD5-SESS, stale=TRUE, opaque="o", qop="auth"'
    )
    assert (c.realm, c.nonce, c.algorithm, c.stale, c.opaque, c.qop) == (
        "r",
        "n",
        "MD5-sess",
        True,
        "o",
        ("auth",),
    )
    plain = parse_challenge('Digest realm="r", nonce="n"')
    assert plain.algorithm == "MD5"
    assert plain.qop == ()
    assert plain.stale is False
    with pytest.raises(SipParseError):
        parse_challenge('Digest realm="r"')
    with pytest.raises(SipParseError):
        parse_challenge('Basic realm="r"')


_PARAM_TEXT = st.text(
    alphabet=st.characters(
        codec="utf-8", exclude_characters="\r\n", exclude_categories=("Cs", "Cc")
    ),
    max_size=30,
)


@given(username=_PARAM_TEXT, realm=_PARAM_TEXT, uri=_PARAM_TEXT)
def test_quoting_round_trips_through_parse(username: str, realm: str, uri: str) -> None:
    quoted = realm.replace("\\", "\\\\").replace('"', '\\"')
    challenge = f'Digest realm="{quoted}", nonce="n"'
    assert parse_challenge(challenge).realm == realm
    value = build_authorization(challenge, "REGISTER", uri, username, "pw", cnonce="c")
    creds = DigestCredentials.parse(value)
    assert (creds.username, creds.realm, creds.uri) == (username, realm, uri)


# --------------------------------------------------------------------------- challenge


def test_challenge_one_value_per_algorithm_in_order() -> None:
    auth = make_auth()
    values = auth.challenge(10.0, ("SHA-256", "MD5"))
    assert len(values) == 2
    first, second = (parse_challenge(v) for v in values)
    assert (first.algorithm, second.algorithm) == ("SHA-256", "MD5")
    assert first.realm == REALM
    assert first.qop == ("auth",)
    assert first.opaque is not None
    assert first.nonce != second.nonce
    assert not first.stale
    assert parse_challenge(auth.challenge(10.0, stale=True)[0]).stale
    with pytest.raises(ValueError):
        auth.challenge(10.0, ("SHA-1",))


# --------------------------------------------------------------------------- verify


def _authorize(
    auth: DigestAuthenticator,
    now: float,
    *,
    algorithm: str = "MD5",
    username: str = "1001",
    password: str | None = None,
    method: str = "REGISTER",
    nc: int = 1,
) -> tuple[str, str]:
    challenge = auth.challenge(now, (algorithm,))[0]
    pw = USERS[username] if password is None else password
    return challenge, build_authorization(challenge, method, URI, username, pw, nc=nc)


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256", "MD5-sess", "SHA-256-sess"])
def test_round_trip(algorithm: str) -> None:
    auth = make_auth()
    for username in USERS:
        _, value = _authorize(auth, 100.0, algorithm=algorithm, username=username)
        result = auth.verify("REGISTER", [value], lookup, now=101.0)
        assert result == AuthResult(
            ok=True, username=username, stale=False, reason="ok", algorithm=algorithm
        )


def test_lookup_receives_base_algorithm() -> None:
    auth = make_auth()
    seen: list[tuple[str, str, str]] = []

    def spy(username: str, realm: str, algorithm: str) -> str | None:
        seen.append((username, realm, algorithm))
        return lookup(username, realm, algorithm)

    _, value = _authorize(auth, 0.0, algorithm="SHA-256-sess")
    assert auth.verify("REGISTER", [value], spy, now=0.0).ok
    assert seen == [("1001", REALM, "SHA-256")]


def test_wrong_password() -> None:
    auth = make_auth()
    _, value = _authorize(auth, 0.0, password="fel")
    result = auth.verify("REGISTER", [value], lookup, now=1.0)
    assert not result.ok
    assert result.reason == "bad-response"
    assert not result.stale


def test_wrong_method_is_bad_response() -> None:
    auth = make_auth()
    _, value = _authorize(auth, 0.0, method="REGISTER")
    assert auth.verify("INVITE", [value], lookup, now=1.0).reason == "bad-response"


def test_unknown_user() -> None:
    auth = make_auth()
    challenge = auth.challenge(0.0)[0]
    value = build_authorization(challenge, "REGISTER", URI, "9999", "x")
    result = auth.verify("REGISTER", [value], lookup, now=1.0)
    assert (result.ok, result.reason, result.username) == (False, "unknown-user", "9999")


def test_no_credentials() -> None:
    auth = make_auth()
    result = auth.verify("REGISTER", [], lookup, now=0.0)
    assert (result.ok, result.reason, result.username) == (False, "no-credentials", None)
    # RFC 4475 regaut01: an unknown scheme is ignored, not an error.
    result = auth.verify("REGISTER", ["NoOneKnowsThisScheme opaque-data=here"], lookup, now=0.0)
    assert result.reason == "no-credentials"


def test_stale_nonce_when_response_otherwise_correct() -> None:
    auth = make_auth(ttl=30.0)
    _, value = _authorize(auth, 1000.0)
    assert auth.verify("REGISTER", [value], lookup, now=1030.0).ok
    _, value = _authorize(auth, 1000.0)
    result = auth.verify("REGISTER", [value], lookup, now=1030.5)
    assert (result.ok, result.stale, result.reason) == (False, True, "stale")


def test_expired_nonce_with_wrong_password_is_not_stale() -> None:
    auth = make_auth(ttl=30.0)
    _, value = _authorize(auth, 1000.0, password="fel")
    result = auth.verify("REGISTER", [value], lookup, now=2000.0)
    assert (result.stale, result.reason) == (False, "bad-response")


def test_nonce_from_the_future_is_stale() -> None:
    # e.g. issued before a restart reset the monotonic clock
    auth = make_auth()
    _, value = _authorize(auth, 5000.0)
    result = auth.verify("REGISTER", [value], lookup, now=10.0)
    assert (result.stale, result.reason) == (True, "stale")


def test_nonce_count_replay() -> None:
    auth = make_auth()
    challenge, first = _authorize(auth, 0.0)
    assert auth.verify("REGISTER", [first], lookup, now=1.0).ok
    replay = auth.verify("REGISTER", [first], lookup, now=2.0)
    assert (replay.ok, replay.reason) == (False, "replay")
    third = build_authorization(challenge, "REGISTER", URI, "1001", USERS["1001"], nc=3)
    assert auth.verify("REGISTER", [third], lookup, now=3.0).ok
    second = build_authorization(challenge, "REGISTER", URI, "1001", USERS["1001"], nc=2)
    assert auth.verify("REGISTER", [second], lookup, now=4.0).reason == "replay"
    fourth = build_authorization(challenge, "REGISTER", URI, "1001", USERS["1001"], nc=4)
    assert auth.verify("REGISTER", [fourth], lookup, now=5.0).ok


def test_failed_attempt_does_not_burn_nonce_count() -> None:
    auth = make_auth()
    challenge, _ = _authorize(auth, 0.0)
    bad = build_authorization(challenge, "REGISTER", URI, "1001", "fel", nc=5)
    assert auth.verify("REGISTER", [bad], lookup, now=1.0).reason == "bad-response"
    good = build_authorization(challenge, "REGISTER", URI, "1001", USERS["1001"], nc=1)
    assert auth.verify("REGISTER", [good], lookup, now=1.0).ok


def test_rfc2069_client_without_qop_is_accepted() -> None:
    auth = make_auth()
    # Strip qop from our challenge as an old server would have sent it.
    c = parse_challenge(auth.challenge(0.0)[0])
    old_style = f'Digest realm="{c.realm}", nonce="{c.nonce}", opaque="{c.opaque}"'
    value = build_authorization(old_style, "REGISTER", URI, "1001", USERS["1001"])
    creds = DigestCredentials.parse(value)
    assert creds.qop is None and creds.nc is None and creds.cnonce is None
    assert auth.verify("REGISTER", [value], lookup, now=1.0).ok
    # No nonce-count, so a repeat cannot be told from a retry: accepted.
    assert auth.verify("REGISTER", [value], lookup, now=2.0).ok
    assert auth.tracked_nonces == 0


def _replace_param(value: str, name: str, new: str) -> str:
    creds = DigestCredentials.parse(value)
    old = getattr(creds, name)
    assert f'{name}="{old}"' in value
    return value.replace(f'{name}="{old}"', f'{name}="{new}"')


def test_tampered_nonce() -> None:
    auth = make_auth(ttl=30.0)
    challenge, value = _authorize(auth, 0.0)
    nonce = parse_challenge(challenge).nonce
    raw = bytearray(base64.urlsafe_b64decode(nonce))
    raw[0] ^= 0x01  # move the timestamp: would make an old nonce look fresh
    forged = base64.urlsafe_b64encode(bytes(raw)).decode()
    # The client computes a correct response for the forged nonce: still rejected.
    forged_challenge = challenge.replace(nonce, forged)
    value = build_authorization(forged_challenge, "REGISTER", URI, "1001", USERS["1001"])
    assert auth.verify("REGISTER", [value], lookup, now=1.0).reason == "bad-nonce"
    for bad in ("", "not-base64!", nonce + "A", nonce[:-1], nonce[:10] + "!" + nonce[10:]):
        value = build_authorization(
            challenge.replace(nonce, bad), "REGISTER", URI, "1001", USERS["1001"]
        )
        assert auth.verify("REGISTER", [value], lookup, now=1.0).reason == "bad-nonce", bad


def test_nonce_from_other_secret_or_realm_is_rejected() -> None:
    other = DigestAuthenticator(REALM, b"another secret")
    _, value = _authorize(other, 0.0)
    assert make_auth().verify("REGISTER", [value], lookup, now=0.0).reason == "bad-nonce"


def test_nonce_bound_to_algorithm() -> None:
    auth = make_auth()
    challenge = auth.challenge(0.0, ("SHA-256",))[0]
    downgraded = challenge.replace("algorithm=SHA-256", "algorithm=MD5")
    value = build_authorization(downgraded, "REGISTER", URI, "1001", USERS["1001"])
    assert auth.verify("REGISTER", [value], lookup, now=0.0).reason == "bad-nonce"


def test_wrong_opaque_rejected_missing_opaque_tolerated() -> None:
    auth = make_auth()
    _, value = _authorize(auth, 0.0)
    assert (
        auth.verify("REGISTER", [_replace_param(value, "opaque", "x")], lookup, 0.0).reason
        == "bad-opaque"
    )
    creds = DigestCredentials.parse(value)
    without = value.replace(f', opaque="{creds.opaque}"', "")
    assert "opaque" not in without
    assert auth.verify("REGISTER", [without], lookup, now=0.0).ok


def test_unsupported_qop_and_algorithm() -> None:
    auth = make_auth()
    _, value = _authorize(auth, 0.0)
    auth_int = value.replace("qop=auth", "qop=auth-int")
    assert auth.verify("REGISTER", [auth_int], lookup, now=0.0).reason == "unsupported-qop"
    sha1 = value.replace("algorithm=MD5", "algorithm=SHA-1")
    assert auth.verify("REGISTER", [sha1], lookup, now=0.0).reason == "unsupported-algorithm"


def test_uppercase_response_hex_accepted() -> None:
    auth = make_auth()
    _, value = _authorize(auth, 0.0)
    creds = DigestCredentials.parse(value)
    upper = _replace_param(value, "response", creds.response.upper())
    assert auth.verify("REGISTER", [upper], lookup, now=0.0).ok


def test_digest_uri_need_not_equal_request_uri() -> None:
    # SIPp sends uri=sip:IP:PORT; the uri is covered by the digest but not compared.
    auth = make_auth()
    challenge = auth.challenge(0.0)[0]
    value = build_authorization(challenge, "REGISTER", "sip:127.0.0.1:5060", "1001", "hemligt")
    assert auth.verify("REGISTER", [value], lookup, now=0.0).ok


def test_other_realm_ignored() -> None:
    auth = make_auth()
    foreign = DigestAuthenticator("other.example", SECRET)
    challenge = foreign.challenge(0.0)[0]
    value = build_authorization(challenge, "REGISTER", URI, "1001", USERS["1001"])
    assert auth.verify("REGISTER", [value], lookup, now=0.0).reason == "no-credentials"


def test_multiple_authorization_headers() -> None:
    auth = make_auth()
    foreign = DigestAuthenticator("other.example", SECRET)
    foreign_value = build_authorization(
        foreign.challenge(0.0)[0], "INVITE", URI, "1001", USERS["1001"]
    )
    _, wrong = _authorize(auth, 0.0, algorithm="SHA-256", password="fel", method="INVITE")
    _, right = _authorize(auth, 0.0, algorithm="MD5", method="INVITE")
    values = ["Basic Zm9vOmJhcg==", foreign_value, wrong, right]
    result = auth.verify("INVITE", values, lookup, now=1.0)
    assert result.ok
    assert result.algorithm == "MD5"
    # Only failures for our realm: the first failure is reported ...
    _, replayed = _authorize(auth, 0.0, method="INVITE")
    assert auth.verify("INVITE", [replayed], lookup, now=1.0).ok
    result = auth.verify("INVITE", [wrong, replayed], lookup, now=1.0)
    assert result.reason == "bad-response"
    # ... but a stale one wins, so the client is re-challenged with stale=true.
    _, old = _authorize(auth, -1000.0, method="INVITE")
    result = auth.verify("INVITE", [wrong, old], lookup, now=1.0)
    assert (result.reason, result.stale) == ("stale", True)


def test_garbage_digest_header_raises_unless_other_usable() -> None:
    auth = make_auth()
    garbage = 'Digest username="1001'
    with pytest.raises(SipParseError) as info:
        auth.verify("REGISTER", [garbage], lookup, now=0.0)
    assert info.value.status_hint == 400
    _, value = _authorize(auth, 0.0)
    assert auth.verify("REGISTER", [garbage, value], lookup, now=0.0).ok


def test_nonce_table_is_bounded_and_pruned() -> None:
    auth = make_auth(ttl=10.0, max_tracked_nonces=3)
    values = [_authorize(auth, float(i))[1] for i in range(5)]
    for i, value in enumerate(values[:4]):
        assert auth.verify("REGISTER", [value], lookup, now=float(i)).ok
    assert auth.tracked_nonces == 3
    # The nonce of the first verification was evicted: not accepted again as
    # a fresh nonce (which would allow a replay), but answered stale.
    result = auth.verify("REGISTER", [values[0]], lookup, now=4.0)
    assert (result.reason, result.stale) == ("stale", True)
    # Nonces still tracked are replay-checked as usual.
    assert auth.verify("REGISTER", [values[3]], lookup, now=4.0).reason == "replay"
    # Nonces issued after the eviction point are unaffected.
    assert auth.verify("REGISTER", [values[4]], lookup, now=4.0).ok
    # Once everything has expired the table empties.
    auth.verify("REGISTER", [], lookup, now=100.0)
    assert auth.tracked_nonces == 0


def test_constructor_validation() -> None:
    with pytest.raises(ValueError):
        DigestAuthenticator(REALM, b"")
    with pytest.raises(ValueError):
        DigestAuthenticator(REALM, SECRET, max_tracked_nonces=0)
