"""The registrar, sans-I/O on virtual time: RFC 3261 §10.3 step by step, digest, throttle.

Every test drives `Registrar.handle(request, source, wall)` with parsed bytes and digest
answers computed here; no sockets, no clock.
"""

from __future__ import annotations

import pytest

from softswitch.directory import Directory, User
from softswitch.location import LocationService
from softswitch.registrar import AuthThrottle, RegisterOutcome, Registrar, RegistrarSettings
from softswitch.sip.digest import (
    Credentials,
    DigestAuthenticator,
    compute_ha1,
    compute_response,
    parse_credentials,
)
from softswitch.sip.errors import SipError
from softswitch.sip.message import Peer, Request, Response, parse_message
from softswitch.store.base import Binding

REALM = "example.com"
PASSWORD = "s3cret"
T0 = 1_700_000_000.0
SRC = Peer("udp", "192.0.2.10", 5062)
SETTINGS = RegistrarSettings(min_expires=60, max_expires=7200, default_expires=3600,
                             max_contacts=3)


def user(ext: str, password: str = PASSWORD) -> User:
    return User(ext, f"User {ext}", compute_ha1("MD5", ext, REALM, password),
                compute_ha1("SHA-256", ext, REALM, password))


def make_registrar(
    *, settings: RegistrarSettings = SETTINGS, throttle: AuthThrottle | None = None,
    nonce_ttl: float = 300.0,
) -> Registrar:
    directory = Directory([user("1001"), user("1002")], REALM)
    auth = DigestAuthenticator(REALM, secret=b"k" * 32, nonce_ttl=nonce_ttl)
    return Registrar(directory, LocationService(), auth, settings,
                     throttle or AuthThrottle(limit=3, window=60.0, block=300.0))


def authorization(
    reg: Registrar, wall: float, *, username: str = "1001", password: str = PASSWORD,
    algorithm: str = "MD5", nonce: str | None = None, realm: str = REALM,
) -> str:
    creds = Credentials(
        username=username, realm=realm,
        nonce=nonce if nonce is not None else reg.auth.make_nonce(wall),
        uri=f"sip:{REALM}", response="", algorithm=algorithm, qop="auth", nc="00000001",
        cnonce="0a4f113b",
    )
    ha1 = compute_ha1(algorithm, username, realm, password)
    response = compute_response("REGISTER", creds, ha1)
    return (
        f'Digest username="{username}", realm="{realm}", nonce="{creds.nonce}", '
        f'uri="{creds.uri}", response="{response}", algorithm={algorithm}, qop=auth, '
        f'nc=00000001, cnonce="0a4f113b"'
    )


def register(
    *contacts: str, to_user: str = "1001", call_id: str = "cid-1@192.0.2.10", cseq: int = 1,
    expires: str | None = None, auth: str | None = None, to_tag: str | None = None,
    extra: tuple[str, ...] = (),
) -> Request:
    lines = [
        f"REGISTER sip:{REALM} SIP/2.0",
        "Via: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bK-" + f"{call_id}-{cseq}".replace("@", "."),
        "Max-Forwards: 70",
        f"From: <sip:{to_user}@{REALM}>;tag=from1",
        f"To: <sip:{to_user}@{REALM}>" + (f";tag={to_tag}" if to_tag else ""),
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} REGISTER",
        *(f"Contact: {c}" for c in contacts),
        *([f"Expires: {expires}"] if expires is not None else []),
        *([f"Authorization: {auth}"] if auth is not None else []),
        *extra,
        "Content-Length: 0",
    ]
    msg = parse_message(("\r\n".join(lines) + "\r\n\r\n").encode())
    assert isinstance(msg, Request)
    return msg


def authed(reg: Registrar, wall: float, *contacts: str, **kw: object) -> Request:
    return register(*contacts, auth=authorization(reg, wall), **kw)  # type: ignore[arg-type]


def contact_expires(resp: Response) -> dict[str, int]:
    """The Contact header values of a 200 as {uri: expires}."""
    out: dict[str, int] = {}
    for value in resp.headers.getall("Contact"):
        uri, _, params = value.partition(">;expires=")
        out[uri.lstrip("<")] = int(params)
    return out


def header_names(resp: Response) -> list[str]:
    return [name.lower() for name, _ in resp.headers]


A = "<sip:1001@192.0.2.10:5062>"
B = "<sip:1001@198.51.100.7:5060>"
C = "<sip:1001@203.0.113.9:5060>"
D = "<sip:1001@203.0.113.10:5060>"
A_URI, B_URI, C_URI, D_URI = (x.strip("<>") for x in (A, B, C, D))


# -- step 1-2: authentication (RFC 3261 §10.3 / §22, RFC 7616) -------------------------------

def test_challenge_without_credentials_offers_both_algorithms() -> None:
    reg = make_registrar()
    resp, outcome = reg.handle(register(A), SRC, T0)
    assert resp.status == 401
    assert outcome == RegisterOutcome("challenged")
    assert resp.to.tag  # RFC 3261 §8.2.6.2
    challenges = resp.headers.getall("WWW-Authenticate")
    algorithms = [parse_challenge(c)["algorithm"] for c in challenges]
    assert algorithms == ["SHA-256", "MD5"]
    for c in challenges:
        params = parse_challenge(c)
        assert params["realm"] == REALM
        assert params["qop"] == "auth"
        assert "stale" not in params
        assert reg.auth.nonce_age(params["nonce"], T0) == 0.0
    assert len(reg.location) == 0  # a challenge creates no binding


def parse_challenge(value: str) -> dict[str, str]:
    scheme, _, rest = value.partition(" ")
    assert scheme == "Digest"
    out = {}
    for part in rest.split(", "):
        k, _, v = part.partition("=")
        out[k] = v.strip('"')
    return out


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
def test_answer_to_challenge_registers(algorithm: str) -> None:
    reg = make_registrar()
    challenge, _ = reg.handle(register(A), SRC, T0)
    nonce = next(parse_challenge(c)["nonce"] for c in challenge.headers.getall("WWW-Authenticate")
                 if parse_challenge(c)["algorithm"] == algorithm)
    auth = authorization(reg, T0 + 1, algorithm=algorithm, nonce=nonce)
    resp, outcome = reg.handle(register(A, cseq=2, auth=auth), SRC, T0 + 1)
    assert resp.status == 200
    assert outcome == RegisterOutcome("registered", "1001", (A_URI,))
    assert resp.to.tag
    assert contact_expires(resp) == {A_URI: 3600}


def test_existing_to_tag_is_kept() -> None:
    reg = make_registrar()
    resp, _ = reg.handle(register(A, to_tag="keep"), SRC, T0)
    assert resp.to.tag == "keep"
    assert str(resp.headers.get("To")).count("tag=") == 1


def test_auth_user_differs_from_to_user_is_forbidden() -> None:
    reg = make_registrar()
    request = register(A, to_user="1002", auth=authorization(reg, T0, username="1001"))
    resp, outcome = reg.handle(request, SRC, T0)
    assert resp.status == 403
    assert outcome == RegisterOutcome("rejected", "1002")
    assert len(reg.location) == 0


def test_unknown_user_and_wrong_password_look_alike() -> None:
    reg = make_registrar()
    wrong = register(A, auth=authorization(reg, T0, password="guess"))
    unknown = register(A, to_user="9999", auth=authorization(reg, T0, username="9999"))
    r1, o1 = reg.handle(wrong, SRC, T0)
    r2, o2 = reg.handle(unknown, Peer("udp", "192.0.2.99", 5060), T0)
    assert r1.status == r2.status == 401
    assert r1.reason == r2.reason
    assert header_names(r1) == header_names(r2)
    assert o1.kind == o2.kind == "auth_failed"
    assert [parse_challenge(c).keys() for c in r1.headers.getall("WWW-Authenticate")] == \
        [parse_challenge(c).keys() for c in r2.headers.getall("WWW-Authenticate")]
    assert len(reg.location) == 0


def test_stale_nonce_is_challenged_with_stale_true() -> None:
    reg = make_registrar(nonce_ttl=300.0)
    auth = authorization(reg, T0, nonce=reg.auth.make_nonce(T0 - 301))
    resp, outcome = reg.handle(register(A, auth=auth), SRC, T0)
    assert resp.status == 401
    assert outcome.kind == "challenged"
    for c in resp.headers.getall("WWW-Authenticate"):
        assert parse_challenge(c)["stale"] == "true"
    assert len(reg.location) == 0
    assert not reg.throttle._failures  # a stale nonce is not a failure


def test_credentials_for_another_realm_are_challenged() -> None:
    reg = make_registrar()
    auth = authorization(reg, T0, realm="other.example")
    resp, outcome = reg.handle(register(A, auth=auth), SRC, T0)
    assert resp.status == 401 and outcome.kind == "challenged"


def test_malformed_authorization_is_400() -> None:
    reg = make_registrar()
    with pytest.raises(SipError) as info:
        reg.handle(register(A, auth='Digest username="1001"'), SRC, T0)
    assert info.value.status == 400


# -- steps 6-8: bindings ------------------------------------------------------------------------

def test_success_lists_every_binding_with_remaining_expires() -> None:
    reg = make_registrar()
    r1, _ = reg.handle(authed(reg, T0, A, expires="600"), SRC, T0)
    assert contact_expires(r1) == {A_URI: 600}
    r2, _ = reg.handle(authed(reg, T0 + 100, B, expires="300", call_id="cid-2"), SRC, T0 + 100)
    assert r2.status == 200
    assert contact_expires(r2) == {A_URI: 500, B_URI: 300}
    assert r2.headers.get("Server") == "softswitch"


def test_contact_expires_param_wins_over_expires_header() -> None:
    reg = make_registrar()
    resp, _ = reg.handle(authed(reg, T0, f"{A};expires=120", B, expires="900"), SRC, T0)
    assert contact_expires(resp) == {A_URI: 120, B_URI: 900}


def test_default_expires_when_none_given() -> None:
    reg = make_registrar()
    resp, _ = reg.handle(authed(reg, T0, A), SRC, T0)
    assert contact_expires(resp) == {A_URI: SETTINGS.default_expires}
    assert reg.location.bindings_of("1001")[A_URI].expires_at == T0 + SETTINGS.default_expires


@pytest.mark.parametrize(("header", "param"), [("59", None), ("900", "1"), ("1", None)])
def test_too_brief_is_423_with_min_expires(header: str, param: str | None) -> None:
    reg = make_registrar()
    contact = A if param is None else f"{A};expires={param}"
    resp, outcome = reg.handle(authed(reg, T0, contact, expires=header), SRC, T0)
    assert resp.status == 423
    assert resp.headers.get("Min-Expires") == str(SETTINGS.min_expires)
    assert outcome.kind == "rejected"
    assert len(reg.location) == 0


def test_too_brief_changes_nothing_even_after_a_good_contact() -> None:
    reg = make_registrar()
    resp, _ = reg.handle(authed(reg, T0, f"{A};expires=600", f"{B};expires=5"), SRC, T0)
    assert resp.status == 423
    assert len(reg.location) == 0


def test_min_expires_exactly_is_accepted() -> None:
    reg = make_registrar()
    resp, _ = reg.handle(authed(reg, T0, A, expires="60"), SRC, T0)
    assert resp.status == 200 and contact_expires(resp) == {A_URI: 60}


def test_too_long_is_clamped_to_max() -> None:
    reg = make_registrar()
    resp, _ = reg.handle(authed(reg, T0, f"{A};expires=999999"), SRC, T0)
    assert contact_expires(resp) == {A_URI: SETTINGS.max_expires}


def test_bad_expires_header_is_400() -> None:
    reg = make_registrar()
    with pytest.raises(SipError) as info:
        reg.handle(authed(reg, T0, A, expires="soon"), SRC, T0)
    assert info.value.status == 400


def test_expires_zero_removes_one_contact() -> None:
    reg = make_registrar()
    reg.handle(authed(reg, T0, A, B), SRC, T0)
    resp, outcome = reg.handle(authed(reg, T0, f"{A};expires=0", cseq=2), SRC, T0 + 1)
    assert resp.status == 200
    assert outcome == RegisterOutcome("unregistered", "1001", (A_URI,))
    assert contact_expires(resp) == {B_URI: 3599}


def test_star_with_expires_zero_removes_all() -> None:
    reg = make_registrar()
    reg.handle(authed(reg, T0, A, B), SRC, T0)
    reg.handle(authed(reg, T0, C, call_id="other-phone"), SRC, T0)
    resp, outcome = reg.handle(authed(reg, T0, "*", expires="0", cseq=2), SRC, T0 + 1)
    assert resp.status == 200
    assert outcome.kind == "unregistered"
    assert set(outcome.contacts) == {A_URI, B_URI, C_URI}
    assert resp.headers.getall("Contact") == []
    assert len(reg.location) == 0


@pytest.mark.parametrize(("contacts", "expires"), [
    (("*",), None),
    (("*",), "60"),
    (("*", A), "0"),
])
def test_star_otherwise_is_400(contacts: tuple[str, ...], expires: str | None) -> None:
    reg = make_registrar()
    reg.handle(authed(reg, T0, B), SRC, T0)
    with pytest.raises(SipError) as info:
        reg.handle(authed(reg, T0, *contacts, expires=expires, cseq=2), SRC, T0)
    assert info.value.status == 400
    assert B_URI in reg.location.bindings_of("1001")


def test_star_refused_for_same_call_id_with_old_cseq() -> None:
    reg = make_registrar()
    reg.handle(authed(reg, T0, A, cseq=5), SRC, T0)
    reg.handle(authed(reg, T0, B, call_id="other-phone"), SRC, T0)
    # RFC 3261 §10.3 step 6: the update is aborted as a whole, nothing is removed.
    with pytest.raises(SipError):
        reg.handle(authed(reg, T0, "*", expires="0", cseq=5), SRC, T0 + 1)
    assert set(reg.location.bindings_of("1001")) == {A_URI, B_URI}


def test_register_without_contact_lists_bindings() -> None:
    reg = make_registrar()
    reg.handle(authed(reg, T0, A), SRC, T0)
    resp, outcome = reg.handle(authed(reg, T0, cseq=2), SRC, T0 + 10)
    assert resp.status == 200
    assert outcome == RegisterOutcome("queried", "1001")
    assert contact_expires(resp) == {A_URI: 3590}


def test_query_omits_expired_binding() -> None:
    reg = make_registrar()
    reg.handle(authed(reg, T0, A, expires="60"), SRC, T0)
    resp, _ = reg.handle(authed(reg, T0 + 60, cseq=2), SRC, T0 + 60)
    assert resp.headers.getall("Contact") == []


def test_several_contacts_per_aor_up_to_max() -> None:
    reg = make_registrar()
    resp, _ = reg.handle(authed(reg, T0, A, B, C), SRC, T0)
    assert resp.status == 200 and len(contact_expires(resp)) == 3
    resp, outcome = reg.handle(authed(reg, T0, D, call_id="fourth"), SRC, T0)
    assert resp.status == 403
    assert outcome.kind == "rejected"
    assert D_URI not in reg.location.bindings_of("1001")
    # A refresh of a known contact is not an addition.
    resp, _ = reg.handle(authed(reg, T0, A, cseq=2), SRC, T0 + 1)
    assert resp.status == 200


def test_max_contacts_refusal_changes_nothing() -> None:
    reg = make_registrar()
    reg.handle(authed(reg, T0, A, B), SRC, T0)
    # Adding C would fit, adding D too would not: all or nothing (RFC 3261 §10.3 step 7).
    resp, _ = reg.handle(authed(reg, T0, C, D, call_id="two-more"), SRC, T0)
    assert resp.status == 403
    assert set(reg.location.bindings_of("1001")) == {A_URI, B_URI}


def test_max_contacts_ignores_expired_bindings() -> None:
    reg = make_registrar()
    reg.handle(authed(reg, T0, A, B, C, expires="60"), SRC, T0)
    # All three expired but not swept yet: they must not keep a phone out.
    resp, _ = reg.handle(authed(reg, T0 + 61, D, call_id="late"), SRC, T0 + 61)
    assert resp.status == 200
    assert contact_expires(resp) == {D_URI: 3600}


def test_max_contacts_counts_removals_in_same_request() -> None:
    reg = make_registrar()
    reg.handle(authed(reg, T0, A, B, C), SRC, T0)
    resp, _ = reg.handle(authed(reg, T0, D, f"{A};expires=0", cseq=2), SRC, T0 + 1)
    assert resp.status == 200
    assert set(contact_expires(resp)) == {B_URI, C_URI, D_URI}


def test_lookup_orders_by_q() -> None:
    reg = make_registrar()
    resp, _ = reg.handle(authed(reg, T0, f"{A};q=0.2", f"{B};q=0.9", C), SRC, T0)
    assert resp.status == 200
    assert [b.contact for b in reg.location.lookup("1001", T0)] == [C_URI, B_URI, A_URI]
    assert [b.q for b in reg.location.lookup("1001", T0)] == [None, 0.9, 0.2]
    assert list(contact_expires(resp)) == [C_URI, B_URI, A_URI]


# -- step 7: Call-ID / CSeq ordering ----------------------------------------------------------

@pytest.mark.parametrize("cseq", [4, 5])
def test_same_call_id_lower_or_equal_cseq_refused(cseq: int) -> None:
    reg = make_registrar()
    reg.handle(authed(reg, T0, A, expires="600", cseq=5), SRC, T0)
    with pytest.raises(SipError) as info:
        reg.handle(authed(reg, T0, A, expires="3000", cseq=cseq), SRC, T0 + 1)
    assert info.value.status == 400
    assert reg.location.bindings_of("1001")[A_URI].expires_at == T0 + 600


def test_same_call_id_lower_cseq_cannot_remove() -> None:
    reg = make_registrar()
    reg.handle(authed(reg, T0, A, cseq=5), SRC, T0)
    with pytest.raises(SipError):
        reg.handle(authed(reg, T0, f"{A};expires=0", cseq=4), SRC, T0 + 1)
    assert A_URI in reg.location.bindings_of("1001")


def test_same_call_id_higher_cseq_refreshes() -> None:
    reg = make_registrar()
    reg.handle(authed(reg, T0, A, expires="600", cseq=5), SRC, T0)
    resp, _ = reg.handle(authed(reg, T0, A, expires="3000", cseq=6), SRC, T0 + 1)
    assert contact_expires(resp) == {A_URI: 3000}
    assert reg.location.bindings_of("1001")[A_URI].cseq == 6


def test_different_call_id_replaces_whatever_cseq() -> None:
    reg = make_registrar()
    reg.handle(authed(reg, T0, A, expires="600", cseq=50), SRC, T0)
    resp, _ = reg.handle(authed(reg, T0, A, expires="900", call_id="rebooted", cseq=1),
                         SRC, T0 + 1)
    assert resp.status == 200
    b = reg.location.bindings_of("1001")[A_URI]
    assert (b.call_id, b.cseq, b.expires_at) == ("rebooted", 1, T0 + 901)


# -- RFC 5626 outbound, recorded details -----------------------------------------------------

INSTANCE = '"<urn:uuid:00000000-0000-1000-8000-000a95a0e128>"'


def test_same_instance_and_reg_id_replaces_old_contact() -> None:
    reg = make_registrar()
    reg.handle(authed(reg, T0, f"{A};+sip.instance={INSTANCE};reg-id=1", B), SRC, T0)
    resp, _ = reg.handle(
        authed(reg, T0, f"{C};+sip.instance={INSTANCE};reg-id=1", call_id="new-flow"),
        SRC, T0 + 1,
    )
    assert resp.status == 200
    assert set(reg.location.bindings_of("1001")) == {B_URI, C_URI}
    b = reg.location.bindings_of("1001")[C_URI]
    assert b.instance_id == INSTANCE  # stored as sent, quotes included
    assert b.reg_id == 1


def test_same_instance_other_reg_id_adds_a_flow() -> None:
    reg = make_registrar()
    reg.handle(authed(reg, T0, f"{A};+sip.instance={INSTANCE};reg-id=1"), SRC, T0)
    reg.handle(authed(reg, T0, f"{C};+sip.instance={INSTANCE};reg-id=2", call_id="flow2"),
               SRC, T0 + 1)
    assert set(reg.location.bindings_of("1001")) == {A_URI, C_URI}


def test_instance_replacement_frees_a_contact_slot() -> None:
    reg = make_registrar()
    reg.handle(authed(reg, T0, f"{A};+sip.instance={INSTANCE};reg-id=1", B, C), SRC, T0)
    resp, _ = reg.handle(
        authed(reg, T0, f"{D};+sip.instance={INSTANCE};reg-id=1", call_id="new-flow"),
        SRC, T0 + 1,
    )
    assert resp.status == 200
    assert set(reg.location.bindings_of("1001")) == {B_URI, C_URI, D_URI}


def test_received_and_user_agent_recorded() -> None:
    reg = make_registrar()
    src = Peer("tcp", "203.0.113.5", 40123)
    reg.handle(authed(reg, T0, A, call_id="cid-x", cseq=7, extra=("User-Agent: Phone/1.2",)),
               src, T0)
    b = reg.location.bindings_of("1001")[A_URI]
    assert b == Binding(
        aor="1001", contact=A_URI, expires_at=T0 + 3600, q=None, call_id="cid-x", cseq=7,
        received="tcp:203.0.113.5:40123", user_agent="Phone/1.2", instance_id=None,
        reg_id=None,
    )


# -- throttle ---------------------------------------------------------------------------------

def test_throttle_blocks_after_limit_within_window() -> None:
    reg = make_registrar(throttle=AuthThrottle(limit=3, window=60.0, block=300.0))
    for i in range(3):
        resp, outcome = reg.handle(
            register(A, cseq=i + 1, auth=authorization(reg, T0 + i, password="guess")),
            SRC, T0 + i,
        )
        assert resp.status == 401 and outcome.kind == "auth_failed"
    # Blocked: even the right password is refused, without a challenge.
    resp, outcome = reg.handle(authed(reg, T0 + 10, A, cseq=9), SRC, T0 + 10)
    assert resp.status == 403
    assert outcome == RegisterOutcome("blocked")
    assert "www-authenticate" not in header_names(resp)
    assert len(reg.location) == 0
    # Other addresses are not affected.
    other = Peer("udp", "192.0.2.11", 5060)
    assert reg.handle(authed(reg, T0 + 10, A, cseq=10), other, T0 + 10)[0].status == 200


def test_throttle_window_slides() -> None:
    t = AuthThrottle(limit=3, window=60.0, block=300.0)
    assert not t.failed("h", T0)
    assert not t.failed("h", T0 + 30)
    assert not t.failed("h", T0 + 60)  # the first failure has left the window
    assert not t.is_blocked("h", T0 + 60)
    assert t.failed("h", T0 + 89)  # T0+30, T0+60, T0+89 are within 60 s
    assert t.is_blocked("h", T0 + 89)
    assert t.blocked() == ["h"]


def test_throttle_block_expires() -> None:
    t = AuthThrottle(limit=2, window=60.0, block=300.0)
    t.failed("h", T0)
    assert t.failed("h", T0 + 1)
    assert t.is_blocked("h", T0 + 300)
    assert not t.is_blocked("h", T0 + 301)
    # The count started afresh: one more failure does not block again.
    assert not t.failed("h", T0 + 302)


def test_throttle_block_expires_through_registrar() -> None:
    reg = make_registrar(throttle=AuthThrottle(limit=1, window=60.0, block=300.0))
    reg.handle(register(A, auth=authorization(reg, T0, password="guess")), SRC, T0)
    assert reg.handle(authed(reg, T0 + 299, A, cseq=2), SRC, T0 + 299)[0].status == 403
    assert reg.handle(authed(reg, T0 + 300, A, cseq=3), SRC, T0 + 300)[0].status == 200


def test_throttle_success_resets_count() -> None:
    reg = make_registrar(throttle=AuthThrottle(limit=3, window=60.0, block=300.0))
    for i in range(2):
        reg.handle(register(A, cseq=i + 1, auth=authorization(reg, T0, password="guess")),
                   SRC, T0 + i)
    assert reg.handle(authed(reg, T0 + 2, A, cseq=3), SRC, T0 + 2)[0].status == 200
    for i in range(2):
        resp, _ = reg.handle(
            register(A, cseq=4 + i, auth=authorization(reg, T0, password="guess")),
            SRC, T0 + 3 + i,
        )
        assert resp.status == 401
    assert not reg.throttle.is_blocked(SRC.host, T0 + 5)


def test_throttle_challenges_are_not_failures() -> None:
    reg = make_registrar(throttle=AuthThrottle(limit=1, window=60.0, block=300.0))
    for i in range(5):
        assert reg.handle(register(A, cseq=i + 1), SRC, T0 + i)[0].status == 401
    assert not reg.throttle.is_blocked(SRC.host, T0 + 5)


def test_throttle_sweep_forgets_old_failures() -> None:
    t = AuthThrottle(limit=2, window=60.0, block=300.0)
    t.failed("a", T0)
    t.failed("b", T0)
    assert t.failed("b", T0 + 1)
    t.sweep(T0 + 60)
    assert "a" not in t._failures
    assert t.blocked() == ["b"]
    t.sweep(T0 + 301)
    assert t.blocked() == []


def test_throttle_disabled() -> None:
    t = AuthThrottle(limit=0)
    assert not any(t.failed("h", T0 + i) for i in range(100))
    assert not t.is_blocked("h", T0 + 100)


def test_parse_credentials_roundtrip_of_helper() -> None:
    # Guards the helper itself: what it builds is what the registrar parses.
    reg = make_registrar()
    c = parse_credentials(authorization(reg, T0, algorithm="SHA-256"))
    assert (c.username, c.realm, c.algorithm, c.qop) == ("1001", REALM, "SHA-256", "auth")
