"""The directory: HA1 values against RFC 7616 vectors, lookup, diff."""

from __future__ import annotations

import hashlib
from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest

from softswitch.config import UserConfig, load_config
from softswitch.directory import Directory, DirectoryDiff, User, ha1

CONF = Path(__file__).resolve().parent.parent / "conf"

# RFC 7616 §3.9.1: the worked example, with the responses the RFC publishes.
MUFASA = dict(username="Mufasa", realm="http-auth@example.org", password="Circle of Life")
NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
RFC_RESPONSE = {
    "MD5": "8ca523f5e9506fed4657c9700eebdbec",
    "SHA-256": "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
}
HASH = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}


def rfc7616_response(algorithm: str, ha1_hex: str) -> str:
    """RFC 7616 §3.4.1 response for the §3.9.1 request (qop=auth, GET /dir/index.html)."""
    h = HASH[algorithm]
    ha2 = h(b"GET:/dir/index.html").hexdigest()
    return h(f"{ha1_hex}:{NONCE}:00000001:{CNONCE}:auth:{ha2}".encode()).hexdigest()


def entry(ext: str, password: str | None = None, **kw: str) -> UserConfig:
    return UserConfig(extension=ext, password=password, **kw)


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
def test_ha1_matches_rfc7616_example(algorithm: str) -> None:
    directory = Directory.from_users(
        [entry(MUFASA["username"], MUFASA["password"], name="Mufasa")], MUFASA["realm"]
    )
    user = directory.lookup("Mufasa")
    assert user is not None
    value = user.ha1_md5 if algorithm == "MD5" else user.ha1_sha256
    assert value is not None
    assert rfc7616_response(algorithm, value) == RFC_RESPONSE[algorithm]


def test_ha1_known_values() -> None:
    # H("Mufasa:http-auth@example.org:Circle of Life"); they yield the RFC's responses above.
    assert ha1("MD5", **MUFASA) == "3d78807defe7de2157e2b0b6573a855f"
    assert ha1("SHA-256", **MUFASA) == (
        "7987c64c30e25f1b74be53f966b49b90f2808aa92faf9a00262392d7b4794232"
    )
    with pytest.raises(ValueError):
        ha1("SHA-512-256", **MUFASA)


def test_configured_ha1_used_as_given() -> None:
    md5 = "AB" * 16
    sha = "cd" * 32
    directory = Directory.from_users(
        [entry("1", ha1=md5), entry("2", ha1_sha256=sha), entry("3", ha1=md5, ha1_sha256=sha)],
        "realm",
    )
    assert directory.lookup("1") == User("1", "", md5.lower(), None)
    assert directory.lookup("2") == User("2", "", None, sha)
    assert directory.lookup("3") == User("3", "", md5.lower(), sha)


def test_realm_enters_the_hash() -> None:
    users = [entry("1001", "pw1001")]
    a = Directory.from_users(users, "a.example").lookup("1001")
    b = Directory.from_users(users, "b.example").lookup("1001")
    assert a is not None and b is not None
    assert a.ha1_md5 != b.ha1_md5 and a.ha1_sha256 != b.ha1_sha256
    assert a.ha1_md5 == hashlib.md5(b"1001:a.example:pw1001").hexdigest()


def test_lookup_len_iteration_and_case() -> None:
    directory = Directory.from_config(load_config(CONF / "softswitch.toml"))
    assert len(directory) == 10
    assert directory.realm == "127.0.0.1"
    assert [u.extension for u in directory] == [str(n) for n in range(1001, 1011)]
    user = directory.lookup("1005")
    assert user is not None and user.name == "Demo 1005"
    assert user.ha1_md5 == hashlib.md5(b"1005:127.0.0.1:pw1005").hexdigest()
    assert directory.lookup("9999") is None
    assert "1001" in directory and "9999" not in directory
    # RFC 3261 §19.1.4: user parts are case-sensitive.
    cased = Directory.from_users([entry("Alice", "x")], "r")
    assert cased.lookup("alice") is None and cased.lookup("Alice") is not None


def test_user_is_frozen_with_slots() -> None:
    user = User("1", "n", None, None)
    with pytest.raises(FrozenInstanceError):
        user.name = "m"  # type: ignore[misc]
    assert not hasattr(user, "__dict__")


def test_duplicate_extension_refused() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        Directory.from_users([entry("1", "a"), entry("1", "b")], "r")


def test_diff_reports_added_removed_changed() -> None:
    old = Directory.from_users(
        [entry("1", "a"), entry("2", "b"), entry("3", "c", name="C"), entry("4", "d")], "r"
    )
    new = Directory.from_users(
        [entry("4", "d"), entry("3", "c", name="Cee"), entry("2", "B"), entry("5", "e")], "r"
    )
    diff = old.diff(new)
    assert diff == DirectoryDiff(added=("5",), removed=("1",), changed=("2", "3"))
    added, removed, changed = diff  # unpacks as a plain tuple
    assert (added, removed, changed) == (("5",), ("1",), ("2", "3"))
    assert new.diff(old) == DirectoryDiff(("1",), ("5",), ("2", "3"))
    assert old.diff(old) == DirectoryDiff((), (), ())


def test_diff_sees_realm_change() -> None:
    users = [entry("1", "a"), entry("2", ha1="0" * 32)]
    before = Directory.from_users(users, "old.example")
    after = Directory.from_users(users, "new.example")
    # Password users get new HA1s; a configured HA1 does not depend on the realm setting.
    assert before.diff(after) == DirectoryDiff((), (), ("1",))
