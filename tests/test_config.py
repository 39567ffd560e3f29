"""Configuration loading: the demo files, every validation rule, includes, syntax errors."""

from __future__ import annotations

import shutil
from ipaddress import ip_network
from pathlib import Path

import pytest

from softswitch.config import (
    Config,
    ConfigError,
    Listener,
    load_config,
    parse_host_port,
    parse_listen,
)

CONF = Path(__file__).resolve().parent.parent / "conf"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def errors_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.errors, "ConfigError without errors"
    return info.value.errors


def user(ext: str, extra: str = "") -> str:
    return f'[[users]]\nextension = "{ext}"\npassword = "pw{ext}"\n{extra}\n'


# --------------------------------------------------------------------------- demo files


def test_demo_config_loads() -> None:
    config = load_config(CONF / "softswitch.toml")
    assert config.source_path == CONF / "softswitch.toml"
    assert config.files == (CONF / "softswitch.toml", CONF / "users.toml")
    assert config.sip.listeners == (
        Listener("udp", "127.0.0.1", 5060),
        Listener("tcp", "127.0.0.1", 5060),
    )
    assert config.store.url == "sqlite:///var/softswitch.db"
    assert [u.extension for u in config.users] == [str(n) for n in range(1001, 1011)]
    assert all(u.password == f"pw{u.extension}" for u in config.users)
    assert config.users[0].name == "Demo 1001"
    assert config.auth.algorithms == ("SHA-256", "MD5")
    assert "pw1001" not in repr(config)  # secrets stay out of logs


def test_production_example_loads_with_its_tls_files(tmp_path: Path) -> None:
    for name in ("production.toml", "users.toml"):
        shutil.copy(CONF / "examples" / name, tmp_path / name)
    # Without the PEM files it names both as missing; with them it loads.
    errors = errors_of(tmp_path / "production.toml")
    assert len(errors) == 2
    assert errors[0].startswith("sip.tls_certificate: file not found")
    assert errors[1].startswith("sip.tls_private_key: file not found")
    write(tmp_path / "tls" / "fullchain.pem", "cert")
    write(tmp_path / "tls" / "privkey.pem", "key")
    config = load_config(tmp_path / "production.toml")
    assert config.store.url.startswith("postgresql://")
    assert config.sip.tls_certificate == str(tmp_path / "tls" / "fullchain.pem")
    assert Listener("tls", "0.0.0.0", 5061) in config.sip.listeners
    assert ip_network("198.51.100.0/28") in config.sip.trusted
    assert config.users[2].ha1 is None and config.users[2].ha1_sha256 is not None


def test_defaults_from_an_empty_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path / "empty.toml", ""))
    assert config.model_dump() == Config().model_dump()
    assert config.registrar.default_expires == 3600
    assert config.sip.t1_ms == 500 and config.sip.t2_ms == 4000 and config.sip.t4_ms == 5000
    assert config.http.host == "127.0.0.1" and config.http.port == 8080
    assert config.log.level == "info"


def test_config_is_immutable(tmp_path: Path) -> None:
    config = load_config(write(tmp_path / "c.toml", user("1001")))
    with pytest.raises(ValueError):
        config.sip.domain = "x"  # type: ignore[misc]
    with pytest.raises(ValueError):
        config.users[0].extension = "x"  # type: ignore[misc]
    assert isinstance(config.users, tuple) and isinstance(config.sip.listen, tuple)


# --------------------------------------------------------------------------- rules


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ('[sip]\nlisten = ["udp:127.0.0.1:5060", "sctp:127.0.0.1:5060"]', "sip.listen[1]: "),
        ('[sip]\nlisten = ["udp:127.0.0.1:0"]', "sip.listen[0]: "),
        ('[sip]\nlisten = ["udp:127.0.0.1:65536"]', "sip.listen[0]: "),
        ('[sip]\nlisten = ["udp:127.0.0.1"]', "sip.listen[0]: "),
        ('[sip]\nlisten = ["udp:bad_host!:5060"]', "sip.listen[0]: "),
        (
            '[sip]\nlisten = ["udp:::1:5060"]',
            "sip.listen[0]: 'udp:::1:5060': write IPv6 addresses in brackets",
        ),
        ('[sip]\nlisten = ["udp:999.1.1.1:5060"]', "sip.listen[0]: "),
        ("[sip]\nlisten = []", "sip.listen: must list at least one entry"),
        (
            '[sip]\nlisten = ["udp:127.0.0.1:5060", "udp:127.0.0.1:5060"]',
            "sip.listen[1]: duplicate of sip.listen[0] ('udp:127.0.0.1:5060')",
        ),
        (
            '[sip]\nlisten = ["tcp:127.0.0.1:5070", "ws:127.0.0.1:5070"]',
            "sip.listen[1]: same TCP socket as sip.listen[0]",
        ),
        (
            '[sip]\nlisten = ["udp:127.0.0.1:5060", "ws:127.0.0.1:8088"]',
            "sip.listen[1]: SIP over WebSocket (ws) is not served yet",
        ),
        ('[sip]\nlisten = ["tls:127.0.0.1:5061"]', "sip.tls_certificate: required by"),
        ('[sip]\ntls_private_key = "missing.pem"', "sip.tls_private_key: file not found"),
        ('[sip]\ndomain = "exa mple.com"', "sip.domain: "),
        ("[sip]\nt1_ms = 0", "sip.t1_ms: "),
        ("[sip]\nt1_ms = 500\nt2_ms = 400", "sip.t2_ms: must not be less than sip.t1_ms"),
        ("[sip]\nmax_message_bytes = -1", "sip.max_message_bytes: "),
        ('[sip]\ntrusted = ["10.0.0.0/8", "10.0.0.1/8"]', "sip.trusted[1]: "),
        ('[sip]\ntrusted = ["not-a-net"]', "sip.trusted[0]: "),
        ('[sip]\nuser_agent = ""', "sip.user_agent: must not be empty"),
        ("[sip]\nt4_ms = \"5000\"", "sip.t4_ms: Input should be a valid integer"),
        ("[registrar]\nmin_expires = 0", "registrar.min_expires: "),
        ("[registrar]\nmin_expires = 600\nmax_expires = 60", "registrar.max_expires: "),
        (
            "[registrar]\nmin_expires = 60\nmax_expires = 600\ndefault_expires = 3600",
            "registrar.default_expires: must lie between min_expires (60) and max_expires (600)",
        ),
        ("[registrar]\nmax_contacts = 0", "registrar.max_contacts: "),
        ('[auth]\nalgorithms = ["SHA-512"]', "auth.algorithms[0]: unknown algorithm 'SHA-512'"),
        ("[auth]\nalgorithms = []", "auth.algorithms: must list at least one entry"),
        ('[auth]\nalgorithms = ["MD5", "md5"]', "auth.algorithms: lists an algorithm twice"),
        ("[auth]\nnonce_ttl_s = 0", "auth.nonce_ttl_s: "),
        ("[auth]\nblock_s = -1", "auth.block_s: "),
        ("[auth]\nfailure_limit = 0", "auth.failure_limit: "),
        ('[http]\nlisten = "8080"', "http.listen: "),
        ('[store]\nurl = "mysql://x@y/z"', "store.url: scheme must be one of"),
        ('[store]\nurl = "sqlite://"', "store.url: use sqlite:///"),
        ('[log]\nlevel = "verbose"', "log.level: must be one of debug|info|warning|error"),
        ('[log]\ntrace = ["1001", ""]', "log.trace[1]: must not be empty"),
        ("[sip]\nlisen = []", "sip.lisen: unknown key"),
        ("[sipp]\nlisten = []", "sipp: unknown key"),
        ('users = [{extension = "1001"}]', "users[0]: give password, ha1 or ha1_sha256"),
        (user("10 01"), "users[0].extension: must be 1-64 characters"),
        (user("x" * 65), "users[0].extension: "),
        (user("1001") + user("1002") + user("1001"), "users[2].extension: duplicate of users[0]"),
        ('[[users]]\nextension = "1"\nha1 = "abc"', "users[0].ha1: must be 32 hex digits"),
        ('[[users]]\nextension = "1"\nha1_sha256 = "' + "0" * 32 + '"', "users[0].ha1_sha256: "),
        ('[[users]]\nextension = "1"\nha1 = "' + "g" * 32 + '"', "users[0].ha1: "),
        (user("1", 'ha1 = "' + "0" * 32 + '"'), "users[0]: give either password or ha1"),
        ('[[users]]\nextension = 1001\npassword = "x"', "users[0].extension: "),
        (user("1", 'pasword = "x"'), "users[0].pasword: unknown key"),
        ('[events]\nbus = "kafka"', "events.bus: "),
        ('[events]\nnats_url = "http://x:4222"', "events.nats_url: "),
        ('[events]\nnats = "x"', "events.nats: unknown key"),
        (
            '[auth]\nalgorithms = ["SHA-256"]\n[[users]]\nextension = "1"\n'
            'ha1 = "' + "a" * 32 + '"',
            "users[0]: has only MD5 HA1 but auth.algorithms offers SHA-256",
        ),
    ],
)
def test_rule_names_key_path(tmp_path: Path, toml: str, expected: str) -> None:
    errors = errors_of(write(tmp_path / "softswitch.toml", toml))
    assert any(e.startswith(expected) for e in errors), errors


def test_tls_listen_with_existing_files_is_accepted(tmp_path: Path) -> None:
    write(tmp_path / "pki" / "cert.pem", "x")
    write(tmp_path / "pki" / "key.pem", "x")
    config = load_config(
        write(
            tmp_path / "c.toml",
            '[sip]\nlisten = ["tls:[::1]:5061", "udp:[::1]:5060"]\n'
            'tls_certificate = "pki/cert.pem"\ntls_private_key = "pki/key.pem"\n',
        )
    )
    assert config.sip.listeners[0] == Listener("tls", "::1", 5061)
    assert config.sip.tls_private_key == str(tmp_path / "pki" / "key.pem")


def test_several_errors_reported_at_once(tmp_path: Path) -> None:
    errors = errors_of(
        write(
            tmp_path / "c.toml",
            '[sip]\nlisten = ["udp:127.0.0.1:99999"]\n'
            "[registrar]\nmax_contacts = 0\n"
            '[log]\nlevel = "loud"\n' + user("1") + user("1") + '[[users]]\nextension = "2"\n',
        )
    )
    assert len(errors) == 5, errors
    assert {e.split(":")[0] for e in errors} == {
        "sip.listen[0]",
        "registrar.max_contacts",
        "log.level",
        "users[1].extension",
        "users[2]",
    }


def test_values_are_normalised(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path / "c.toml",
            '[sip]\nlisten = ["UDP:Example.COM:5060"]\ndomain = "SIP.Example.com"\n'
            '[auth]\nalgorithms = ["sha-256", "md5"]\n[log]\nlevel = "DEBUG"\n'
            '[[users]]\nextension = "7"\nha1 = "' + "AB" * 16 + '"\n',
        )
    )
    assert config.sip.listeners == (Listener("udp", "example.com", 5060),)
    assert config.sip.domain == "sip.example.com"
    assert config.auth.algorithms == ("SHA-256", "MD5")
    assert config.log.level == "debug"
    assert config.users[0].ha1 == "ab" * 16


# --------------------------------------------------------------------------- includes


def test_include_merges_lists_in_order(tmp_path: Path) -> None:
    main = write(
        tmp_path / "main.toml",
        'include = ["users/a.toml", "b.toml"]\n[sip]\ndomain = "pbx.example"\n' + user("1000"),
    )
    write(tmp_path / "users" / "a.toml", 'include = ["../c.toml"]\n' + user("1001") + user("1002"))
    write(tmp_path / "b.toml", user("1003"))
    write(tmp_path / "c.toml", '[log]\nlevel = "debug"\n' + user("1004"))
    config = load_config(main)
    # Depth-first: the main file, then each include with its own includes.
    assert [u.extension for u in config.users] == ["1000", "1001", "1002", "1004", "1003"]
    assert config.log.level == "debug"  # a table may live in an included file
    assert config.files == tuple(
        p.resolve()
        for p in (main, tmp_path / "users/a.toml", tmp_path / "c.toml", tmp_path / "b.toml")
    )


def test_errors_in_included_files_are_prefixed(tmp_path: Path) -> None:
    main = write(tmp_path / "main.toml", 'include = ["users.toml", "more/log.toml"]\n' + user("1"))
    write(
        tmp_path / "users.toml",
        user("2") + user("1") + '[[users]]\nextension = "3"\n[[users]]\nextension = "4"\n',
    )
    write(tmp_path / "more" / "log.toml", '[log]\nlevel = "loud"\n')
    errors = errors_of(main)
    assert "users.toml: users[2]: give password, ha1 or ha1_sha256" in errors
    assert "users.toml: users[3]: give password, ha1 or ha1_sha256" in errors
    assert "users.toml: users[1].extension: duplicate of users[0] ('1')" in errors
    assert any(e.startswith("more/log.toml: log.level: must be one of") for e in errors)
    assert len(errors) == 4, errors


def test_tls_paths_are_relative_to_the_file_defining_sip(tmp_path: Path) -> None:
    write(tmp_path / "sub" / "cert.pem", "x")
    write(tmp_path / "sub" / "key.pem", "x")
    write(
        tmp_path / "sub" / "sip.toml",
        '[sip]\nlisten = ["tls:127.0.0.1:5061"]\n'
        'tls_certificate = "cert.pem"\ntls_private_key = "key.pem"\n',
    )
    config = load_config(write(tmp_path / "main.toml", 'include = ["sub/sip.toml"]\n'))
    assert config.sip.tls_certificate == str(tmp_path / "sub" / "cert.pem")


def test_key_defined_in_two_files_names_both(tmp_path: Path) -> None:
    main = write(tmp_path / "main.toml", 'include = ["other.toml"]\n[sip]\ndomain = "a"\n')
    write(tmp_path / "other.toml", '[sip]\ndomain = "b"\n')
    assert errors_of(main) == ["other.toml: sip: already defined in main.toml"]


def test_include_cycle_is_an_error(tmp_path: Path) -> None:
    main = write(tmp_path / "main.toml", 'include = ["a.toml"]\n')
    write(tmp_path / "a.toml", 'include = ["b.toml"]\n')
    write(tmp_path / "b.toml", 'include = ["main.toml"]\n')
    errors = errors_of(main)
    cycle = "main.toml -> a.toml -> b.toml -> main.toml"
    assert errors == [f"b.toml: include[0]: include cycle: {cycle}"]


def test_self_include_and_double_include(tmp_path: Path) -> None:
    assert "include cycle" in errors_of(write(tmp_path / "s.toml", 'include = ["s.toml"]\n'))[0]
    main = write(tmp_path / "m.toml", 'include = ["u.toml", "./u.toml"]\n')
    write(tmp_path / "u.toml", user("1"))
    assert errors_of(main) == ["include[1]: u.toml is included more than once"]


def test_missing_include_and_bad_include_value(tmp_path: Path) -> None:
    errors = errors_of(write(tmp_path / "m.toml", 'include = ["nope.toml", 3]\n'))
    assert errors[0].startswith("include[0]: cannot read nope.toml")
    assert errors[1] == "include[1]: must be a file name"
    assert errors_of(write(tmp_path / "n.toml", "include = 3\n")) == [
        "include: must be a list of file names"
    ]


def test_missing_main_file(tmp_path: Path) -> None:
    errors = errors_of(tmp_path / "absent.toml")
    assert len(errors) == 1 and "cannot read" in errors[0] and "absent.toml" in errors[0]


# --------------------------------------------------------------------------- syntax


def test_toml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.toml", '[sip]\ndomain = "x"\nt1_ms = = 5\n')
    errors = errors_of(path)
    assert len(errors) == 1
    assert errors[0].startswith("bad.toml: TOML syntax error")
    assert "line 3" in errors[0]


def test_toml_syntax_error_in_included_file(tmp_path: Path) -> None:
    main = write(tmp_path / "main.toml", 'include = ["users.toml"]\n' + user("1"))
    write(tmp_path / "users.toml", user("2") + "[[users]\n")
    errors = errors_of(main)
    assert len(errors) == 1
    assert errors[0].startswith("users.toml: TOML syntax error") and "line 5" in errors[0]


# --------------------------------------------------------------------------- helpers


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("udp:127.0.0.1:5060", ("udp", "127.0.0.1", 5060)),
        ("tls:[2001:DB8::1]:5061", ("tls", "2001:db8::1", 5061)),
        ("ws:sip.example.com:8443", ("ws", "sip.example.com", 8443)),
        ("TCP:0.0.0.0:1", ("tcp", "0.0.0.0", 1)),
    ],
)
def test_parse_listen(entry: str, expected: tuple[str, str, int]) -> None:
    assert parse_listen(entry) == expected


@pytest.mark.parametrize(
    "entry",
    ["udp", "udp:", "udp:1.2.3.4", "udp:1.2.3.4:x", "udp:[1.2.3.4]:5060", "udp:[::1:5060",
     "quic:1.2.3.4:5060", "udp:-bad-.com:5060", "udp:1.2.3:5060"],
)  # fmt: skip
def test_parse_listen_rejects(entry: str) -> None:
    with pytest.raises(ValueError):
        parse_listen(entry)


def test_parse_host_port() -> None:
    assert parse_host_port("[::]:8080") == ("::", 8080)
    assert parse_host_port("localhost:80") == ("localhost", 80)
    with pytest.raises(ValueError):
        parse_host_port("localhost")
