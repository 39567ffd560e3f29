"""Digest authentication (RFC 7616) against the RFC's own vectors, and nonce life cycle."""

from __future__ import annotations

import dataclasses

import pytest

from softswitch.sip.digest import (
    Credentials,
    DigestAuthenticator,
    compute_ha1,
    compute_response,
    parse_credentials,
)

# RFC 7616 §3.9.1 example (HTTP, but the computation is the same for SIP).
RFC_REALM = "http-auth@example.org"
RFC_NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
RFC_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"


def _rfc_creds(algorithm: str) -> Credentials:
    return Credentials(
        username="Mufasa", realm=RFC_REALM, nonce=RFC_NONCE, uri="/dir/index.html",
        response="", algorithm=algorithm, qop="auth", nc="00000001", cnonce=RFC_CNONCE,
    )


@pytest.mark.parametrize(("algorithm", "expected"), [
    ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
    ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
])
def test_rfc7616_example_response(algorithm: str, expected: str) -> None:
    ha1 = compute_ha1(algorithm, "Mufasa", RFC_REALM, "Circle of Life")
    assert compute_response("GET", _rfc_creds(algorithm), ha1) == expected


def test_parse_credentials_quoted_commas_and_escapes() -> None:
    c = parse_credentials(
        'Digest username="a\\"b", realm="x,y", nonce="n", uri="sip:h", '
        'response="ABCDEF", algorithm=sha-256, qop=auth, nc=00000001, cnonce="c"'
    )
    assert c.username == 'a"b'
    assert c.realm == "x,y"
    assert c.response == "abcdef"  # hex compared lower-case
    assert c.algorithm == "SHA-256"
    assert c.qop == "auth" and c.nc == "00000001" and c.cnonce == "c"


@pytest.mark.parametrize("header", [
    'Basic dXNlcjpwYXNz',
    'Digest username="a", realm="r", nonce="n", uri="sip:h"',  # no response
    'Digest username="a, realm="r"',  # unterminated quote
    'Digest username="a", realm="r", nonce="n", uri="u", response="x", qop=auth',  # no nc
])
def test_parse_credentials_rejects(header: str) -> None:
    with pytest.raises(ValueError):
        parse_credentials(header)


REALM = "127.0.0.1"


def _answer(auth: DigestAuthenticator, challenge: str, password: str, user: str = "1001",
            method: str = "REGISTER", uri: str = "sip:127.0.0.1") -> Credentials:
    params = parse_credentials(
        challenge.replace("Digest ", 'Digest username="x", uri="u", response="0", '
                          'nc=00000001, cnonce="c", ', 1)
    )
    creds = dataclasses.replace(params, username=user, uri=uri, cnonce="abc", nc="00000001")
    ha1 = compute_ha1(params.algorithm, user, REALM, password)
    return dataclasses.replace(creds, response=compute_response(method, creds, ha1))


def _lookup(user: str, algorithm: str) -> str | None:
    if user != "1001":
        return None
    return compute_ha1(algorithm, "1001", REALM, "pw1001")


@pytest.mark.parametrize("index", [0, 1])
def test_challenge_answer_round_trip(index: int) -> None:
    auth = DigestAuthenticator(REALM, secret=b"k" * 32, nonce_ttl=300)
    challenges = auth.challenges(1000.0)
    assert [c.split("algorithm=")[1].split(",")[0] for c in challenges] == ["SHA-256", "MD5"]
    creds = _answer(auth, challenges[index], "pw1001")
    result = auth.verify("REGISTER", creds, _lookup, 1010.0)
    assert result.ok and result.username == "1001"


def test_wrong_password_and_unknown_user_look_alike() -> None:
    auth = DigestAuthenticator(REALM, secret=b"k" * 32)
    ch = auth.challenges(1000.0)[0]
    wrong = auth.verify("REGISTER", _answer(auth, ch, "nope"), _lookup, 1001.0)
    unknown = auth.verify("REGISTER", _answer(auth, ch, "pw1001", user="9999"), _lookup, 1001.0)
    for r in (wrong, unknown):
        assert not r.ok and r.failure and not r.stale


def test_expired_nonce_is_stale_not_failure() -> None:
    auth = DigestAuthenticator(REALM, secret=b"k" * 32, nonce_ttl=300)
    creds = _answer(auth, auth.challenges(1000.0)[0], "pw1001")
    result = auth.verify("REGISTER", creds, _lookup, 1000.0 + 301)
    assert not result.ok and result.stale and not result.failure
    assert "stale=true" in auth.challenges(1400.0, stale=True)[0]


def test_forged_or_foreign_nonce_is_never_accepted() -> None:
    ours = DigestAuthenticator(REALM, secret=b"k" * 32)
    other = DigestAuthenticator(REALM, secret=b"z" * 32)
    creds = _answer(other, other.challenges(1000.0)[0], "pw1001")
    result = ours.verify("REGISTER", creds, _lookup, 1001.0)
    assert not result.ok
    tampered = dataclasses.replace(creds, nonce=creds.nonce[:-2] + "AA")
    assert not ours.verify("REGISTER", tampered, _lookup, 1001.0).ok


def test_response_bound_to_method_and_uri() -> None:
    auth = DigestAuthenticator(REALM, secret=b"k" * 32)
    creds = _answer(auth, auth.challenges(1000.0)[1], "pw1001", method="REGISTER")
    assert not auth.verify("INVITE", creds, _lookup, 1001.0).ok
    moved = dataclasses.replace(creds, uri="sip:evil")
    assert not auth.verify("REGISTER", moved, _lookup, 1001.0).ok


def test_algorithm_not_offered_is_refused() -> None:
    auth = DigestAuthenticator(REALM, secret=b"k" * 32, algorithms=("SHA-256",))
    md5 = DigestAuthenticator(REALM, secret=b"k" * 32, algorithms=("MD5",))
    creds = _answer(md5, md5.challenges(1000.0)[0], "pw1001")
    assert not auth.verify("REGISTER", creds, _lookup, 1001.0).ok


def test_rfc2069_style_without_qop_still_verifies() -> None:
    auth = DigestAuthenticator(REALM, secret=b"k" * 32)
    nonce = auth.make_nonce(1000.0)
    creds = Credentials(username="1001", realm=REALM, nonce=nonce, uri="sip:127.0.0.1",
                        response="", algorithm="MD5")
    ha1 = compute_ha1("MD5", "1001", REALM, "pw1001")
    creds = dataclasses.replace(creds, response=compute_response("REGISTER", creds, ha1))
    assert auth.verify("REGISTER", creds, _lookup, 1001.0).ok
