"""Configuration: TOML files with includes, validated as a whole by pydantic.

`load_config(path)` reads the main file and the files it includes, merges them, validates the
result and returns an immutable `Config`; a bad configuration raises `ConfigError` carrying
every problem found, each as ``"[file: ]key.path: message"``.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from softswitch.acd_config import (
    ANNOUNCEMENT_PROMPTS,
    SURVEY_PROMPTS,
    VOICEMAIL_PROMPTS,
    AgentEntry,
    PriorityRuleEntry,
    QueueEntry,
    ServiceEntry,
    hash_pin,
)

__all__ = [
    "AuthConfig",
    "CallsConfig",
    "Config",
    "ConfigError",
    "HttpConfig",
    "Listener",
    "LogConfig",
    "MediaConfig",
    "RegistrarConfig",
    "SipConfig",
    "StoreConfig",
    "UserConfig",
    "WebConfig",
    "WebUser",
    "load_config",
    "parse_host_port",
    "parse_listen",
]

TRANSPORTS = ("udp", "tcp", "tls", "ws")
SERVED_TRANSPORTS = ("udp", "tcp", "tls")
# Transports that bind a TCP socket: two of them cannot share one address.
_STREAM_TRANSPORTS = frozenset({"tcp", "tls", "ws"})
ALGORITHMS = ("MD5", "SHA-256")
LOG_LEVELS = ("debug", "info", "warning", "error")
STORE_SCHEMES = ("sqlite", "postgresql", "postgres")

_EXTENSION_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
_HEX_RE = re.compile(r"[0-9a-fA-F]+")
# RFC 1123 §2.1 host names: letters, digits, hyphens; labels up to 63 octets.
_LABEL_RE = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


class ConfigError(Exception):
    """A configuration was refused; `errors` names every problem by key path."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = list(errors)
        super().__init__("invalid configuration:\n  " + "\n  ".join(self.errors))


class Listener(NamedTuple):
    """One parsed `sip.listen` entry; `host` is an IPv6 address without brackets."""

    transport: str
    host: str
    port: int


# --------------------------------------------------------------------------- value parsers


def _is_hostname(host: str) -> bool:
    if not host or len(host) > 253:
        return False
    labels = host.rstrip(".").split(".")
    # A name made of digits and dots only is a malformed IPv4 address, not a host name.
    if all(label.isdigit() for label in labels):
        return False
    return all(_LABEL_RE.fullmatch(label) for label in labels)


def _check_host(host: str) -> str:
    try:
        return str(ip_address(host))
    except ValueError:
        pass
    if not _is_hostname(host):
        raise ValueError(f"{host!r} is neither an IP address nor a host name")
    return host.lower()


def parse_host_port(text: str) -> tuple[str, int]:
    """Split ``host:port`` (``[v6]:port`` for IPv6); raise `ValueError` when malformed."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or text[end + 1 : end + 2] != ":":
            raise ValueError("expected [IPv6]:port")
        host, port_text = text[1:end], text[end + 2 :]
        try:
            if ip_address(host).version != 6:
                raise ValueError
        except ValueError:
            raise ValueError(f"{host!r} inside brackets is not an IPv6 address") from None
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or not host:
            raise ValueError("expected host:port")
        if ":" in host:
            raise ValueError("write IPv6 addresses in brackets, e.g. [::1]:5060")
        host = _check_host(host)
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError("port must be a number from 1 to 65535")
    return host.lower(), int(port_text)


def parse_listen(entry: str) -> Listener:
    """Parse ``transport:host:port`` (e.g. ``udp:0.0.0.0:5060``, ``tls:[::]:5061``)."""
    transport, sep, rest = entry.partition(":")
    if not sep:
        raise ValueError(f"{entry!r}: expected transport:host:port")
    transport = transport.lower()
    if transport not in TRANSPORTS:
        raise ValueError(f"{entry!r}: transport must be one of {', '.join(TRANSPORTS)}")
    try:
        host, port = parse_host_port(rest)
    except ValueError as exc:
        raise ValueError(f"{entry!r}: {exc}") from None
    return Listener(transport, host, port)


def _listen_entry(value: str) -> str:
    if parse_listen(value).transport not in SERVED_TRANSPORTS:
        # PBX-2's WebSocket transport (RFC 7118) arrives with the web layer; refuse it here
        # rather than let `run` fail on a file that `check-config` accepted.
        raise ValueError("SIP over WebSocket (ws) is not served yet; use udp, tcp or tls")
    return value


def _host_port(value: str) -> str:
    parse_host_port(value)
    return value


def _cidr(value: Any) -> IPv4Network | IPv6Network:
    if not isinstance(value, str):
        raise ValueError("must be a string such as '192.0.2.0/24'")
    try:
        return ip_network(value, strict=True)
    except ValueError as exc:
        raise ValueError(str(exc)) from None


def _not_empty_list(value: Any) -> Any:
    # A before-check: pydantic's min_length would add a second error when an item is bad.
    if isinstance(value, list | tuple) and not value:
        raise ValueError("must list at least one entry")
    return value


def _non_empty(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def _hex(length: int, what: str) -> Any:
    def check(value: str) -> str:
        if len(value) != length or not _HEX_RE.fullmatch(value):
            raise ValueError(f"must be {length} hex digits ({what})")
        return value.lower()

    return check


# --------------------------------------------------------------------------- models


class _Model(BaseModel):
    # strict: TOML is typed, so "60" where a number belongs is a mistake, not a number.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


ListenEntry = Annotated[str, AfterValidator(_listen_entry)]
AtLeastOne = BeforeValidator(_not_empty_list)
Network = Annotated[IPv4Network | IPv6Network, BeforeValidator(_cidr)]
NonEmpty = Annotated[str, AfterValidator(_non_empty)]
PositiveInt = Annotated[int, Field(gt=0)]


class SipConfig(_Model):
    listen: Annotated[tuple[ListenEntry, ...], AtLeastOne] = (
        "udp:127.0.0.1:5060",
        "tcp:127.0.0.1:5060",
    )
    domain: Annotated[str, AfterValidator(_check_host)] = "127.0.0.1"
    user_agent: NonEmpty = "softswitch"
    # Paths relative to the file that defines [sip]; stored resolved (absolute) after loading.
    tls_certificate: str = Field(default="", validate_default=True)
    tls_private_key: str = Field(default="", validate_default=True)
    t1_ms: PositiveInt = 500  # RFC 3261 §17.1.1.1 T1, RTT estimate
    t2_ms: PositiveInt = 4000  # RFC 3261 §17.1.2.2 T2, cap on non-INVITE retransmit interval
    t4_ms: PositiveInt = 5000  # RFC 3261 §17.1.2.2 T4, max lifetime of a message in the network
    max_message_bytes: PositiveInt = 65535
    trusted: tuple[Network, ...] = ()

    @property
    def listeners(self) -> tuple[Listener, ...]:
        """`listen` parsed."""
        return tuple(parse_listen(entry) for entry in self.listen)

    @field_validator("t2_ms")
    @classmethod
    def _t2_not_below_t1(cls, value: int, info: ValidationInfo) -> int:
        t1 = info.data.get("t1_ms")
        if t1 is not None and value < t1:
            raise ValueError(f"must not be less than sip.t1_ms ({t1})")
        return value

    @field_validator("tls_certificate", "tls_private_key")
    @classmethod
    def _tls_file(cls, value: str, info: ValidationInfo) -> str:
        tls = [e for e in info.data.get("listen", ()) if parse_listen(e).transport == "tls"]
        if not value:
            if tls:
                raise ValueError(f"required by the tls listen entry {tls[0]!r}")
            return value
        base = (info.context or {}).get("base_dirs", {}).get("sip")
        path = Path(value).expanduser()
        if not path.is_absolute() and base is not None:
            path = Path(base) / path
        if not path.is_file():
            raise ValueError(f"file not found: {path}")
        return str(path)


class RegistrarConfig(_Model):
    # Field order matters: the validators below see the fields declared before them.
    min_expires: PositiveInt = 60
    max_expires: PositiveInt = 7200
    default_expires: PositiveInt = 3600
    max_contacts: PositiveInt = 10

    @field_validator("max_expires")
    @classmethod
    def _max_not_below_min(cls, value: int, info: ValidationInfo) -> int:
        low = info.data.get("min_expires")
        if low is not None and value < low:
            raise ValueError(f"must not be less than registrar.min_expires ({low})")
        return value

    @field_validator("default_expires")
    @classmethod
    def _default_in_range(cls, value: int, info: ValidationInfo) -> int:
        low, high = info.data.get("min_expires"), info.data.get("max_expires")
        if low is not None and high is not None and not low <= value <= high:
            raise ValueError(f"must lie between min_expires ({low}) and max_expires ({high})")
        return value


def _algorithm(value: str) -> str:
    for name in ALGORITHMS:  # RFC 7616 §3.3: algorithm names compare case-insensitively
        if value.upper() == name:
            return name
    raise ValueError(f"unknown algorithm {value!r}; use {' or '.join(ALGORITHMS)}")


class AuthConfig(_Model):
    # RFC 7616 §3.7: challenges are offered in order of preference, strongest first.
    algorithms: Annotated[tuple[Annotated[str, AfterValidator(_algorithm)], ...], AtLeastOne] = (
        "SHA-256",
        "MD5",
    )
    nonce_ttl_s: PositiveInt = 300
    secret: str = Field(default="", repr=False)
    failure_limit: PositiveInt = 10
    failure_window_s: PositiveInt = 60
    block_s: Annotated[int, Field(ge=0)] = 300

    @field_validator("algorithms")
    @classmethod
    def _no_duplicate_algorithm(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("lists an algorithm twice")
        return value


class HttpConfig(_Model):
    listen: Annotated[str, AfterValidator(_host_port)] = "127.0.0.1:8080"
    admin_token: str = Field(default="", repr=False)

    @property
    def host(self) -> str:
        return parse_host_port(self.listen)[0]

    @property
    def port(self) -> int:
        return parse_host_port(self.listen)[1]


def _store_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in STORE_SCHEMES:
        raise ValueError(f"scheme must be one of {', '.join(STORE_SCHEMES)}: {value!r}")
    if parts.scheme == "sqlite" and not (value == "sqlite://:memory:" or len(parts.path) > 1):
        raise ValueError("use sqlite:///relative/path, sqlite:////absolute/path or sqlite://:memory:")
    return value


class StoreConfig(_Model):
    url: Annotated[str, AfterValidator(_store_url)] = "sqlite:///var/softswitch.db"


def _nats_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("nats", "tls") or not parts.hostname:
        raise ValueError(f"expected nats://host:port or tls://host:port: {value!r}")
    return value


_NATS_NAME = r"^[A-Za-z0-9_-]{1,64}$"
_NATS_SUBJECT = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$"


class EventsConfig(_Model):
    bus: Literal["local", "nats"] = "local"  # in-process fan-out, or NATS JetStream
    nats_url: Annotated[str, AfterValidator(_nats_url)] = "nats://127.0.0.1:4222"
    # JetStream stream and subject prefix (events go on <prefix>.<type>)
    nats_stream: Annotated[str, Field(pattern=_NATS_NAME)] = "SOFTSWITCH_EVENTS"
    nats_subject_prefix: Annotated[str, Field(pattern=_NATS_SUBJECT)] = "softswitch.events"


def _log_level(value: str) -> str:
    if value.lower() not in LOG_LEVELS:
        raise ValueError(f"must be one of {'|'.join(LOG_LEVELS)}")
    return value.lower()


class LogConfig(_Model):
    level: Annotated[str, AfterValidator(_log_level)] = "info"
    trace: tuple[NonEmpty, ...] = ()


def _extension(value: str) -> str:
    if not _EXTENSION_RE.fullmatch(value):
        raise ValueError("must be 1-64 characters of A-Z a-z 0-9 . _ -")
    return value


def _static_contact(value: str) -> str:
    """``sip:host:port;transport=udp``: a SIP URI whose host is an IP address or a host name
    (resolved by the running switch at start, on reload and every few minutes)."""
    from softswitch.sip.errors import SipError
    from softswitch.sip.uri import SipURI, parse_uri

    try:
        uri = parse_uri(value)
    except SipError:
        raise ValueError(f"not a SIP URI: {value!r}") from None
    if not isinstance(uri, SipURI) or uri.scheme != "sip":
        raise ValueError(f"must be a sip: URI such as 'sip:192.0.2.10:5060', got {value!r}")
    _check_host(uri.host)
    transport = (uri.params.get("transport") or "udp").lower()
    if transport not in ("udp", "tcp"):
        raise ValueError(f"transport must be udp or tcp, got {transport!r}")
    return value


class UserConfig(_Model):
    extension: Annotated[str, AfterValidator(_extension)]
    password: NonEmpty | None = Field(default=None, repr=False)  # kept out of logs
    # RFC 7616 §3.4.2 HA1 = H(username ":" realm ":" password), realm being sip.domain.
    ha1: Annotated[str, AfterValidator(_hex(32, "MD5"))] | None = None
    ha1_sha256: Annotated[str, AfterValidator(_hex(64, "SHA-256"))] | None = None
    name: str = ""
    # A static contact rung besides registered ones (a gateway, a SIPp UAS in a benchmark).
    contact: Annotated[str, AfterValidator(_static_contact)] | None = None

    @model_validator(mode="after")
    def _one_secret(self) -> UserConfig:
        hashed = self.ha1 is not None or self.ha1_sha256 is not None
        if self.password is None and not hashed and self.contact is None:
            # A user with only a static contact is a gateway: it never registers.
            raise ValueError("give password, ha1 or ha1_sha256")
        if self.password is not None and hashed:
            raise ValueError("give either password or ha1/ha1_sha256, not both")
        return self


DEFAULT_MOH = Path(__file__).resolve().parent.parent / "conf" / "moh" / "default.wav"


def _port_range(value: str) -> str:
    from media.relay import parse_port_range

    parse_port_range(value)
    return value


class MediaConfig(_Model):
    # RTP on even ports, RTCP on the odd port above (RFC 3550 §11); pairs come from here.
    rtp_ports: Annotated[str, AfterValidator(_port_range)] = "20000-29999"
    address: Annotated[str, AfterValidator(_check_host)] = "127.0.0.1"
    inactivity_s: PositiveInt = 60  # no RTP on a leg this long ends an answered call
    # Music on hold played to a held party; relative to the file that defines [media].
    # Empty: the file shipped with the switch (conf/moh/default.wav).
    moh: str = Field(default="", validate_default=True)

    @field_validator("moh")
    @classmethod
    def _moh_file(cls, value: str, info: ValidationInfo) -> str:
        if not value:
            return str(DEFAULT_MOH)
        base = (info.context or {}).get("base_dirs", {}).get("media")
        path = Path(value).expanduser()
        if not path.is_absolute() and base is not None:
            path = Path(base) / path
        if not path.is_file():
            raise ValueError(f"file not found: {path}")
        return str(path)

    @property
    def port_range(self) -> tuple[int, int]:
        from media.relay import parse_port_range

        return parse_port_range(self.rtp_ports)


class CallsConfig(_Model):
    ring_timeout_s: Annotated[float | int, Field(gt=0)] = 30  # unanswered calls get 480


def _timezone(value: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (an IANA name: 'Asia/Jakarta')") from None
    return value


_WEB_USER_RE = re.compile(r"[A-Za-z0-9._@-]{1,64}")


def _web_user_name(value: str) -> str:
    if not _WEB_USER_RE.fullmatch(value):
        raise ValueError("must be 1 to 64 letters, digits or . _ @ -")
    return value


def _scrypt_hash(value: str) -> str:
    parts = value.split("$")
    if len(parts) != 6 or parts[0] != "scrypt" or not all(p.isdigit() for p in parts[1:4]):
        raise ValueError("must be scrypt$N$r$p$salt$hash (as acd_config.hash_pin makes)")
    return value


def _kiosk_token(value: str) -> str:
    if len(value) < 16:
        raise ValueError("must be at least 16 characters (it is the TV's only credential)")
    return value


class WebUser(_Model):
    """A person who logs in to the web pages; `agent` ones see only their own figures."""

    name: Annotated[str, AfterValidator(_web_user_name)]
    role: Literal["supervisor", "manager", "agent"]
    # scrypt$N$r$p$salt$hash (softswitch.acd_config.hash_pin); a plain `password` (demo
    # files) is hashed at load and never kept.
    password_hash: Annotated[str, AfterValidator(_scrypt_hash)] = Field(repr=False)
    agent: str | None = None  # the ACD agent id; required for role "agent"

    @model_validator(mode="before")
    @classmethod
    def _hash_plain_password(cls, data: Any) -> Any:
        if isinstance(data, dict) and "password" in data:
            data = dict(data)
            password = data.pop("password")
            if "password_hash" in data:
                raise ValueError("give password or password_hash, not both")
            if not isinstance(password, str) or len(password) < 4:
                raise ValueError("password: must be a string of at least 4 characters")
            data["password_hash"] = hash_pin(password)
        return data

    @model_validator(mode="after")
    def _agent_for_agents(self) -> WebUser:
        if self.role == "agent" and not self.agent:
            raise ValueError("role agent needs agent (the ACD agent id whose figures it sees)")
        return self


class WebConfig(_Model):
    timezone: Annotated[str, AfterValidator(_timezone)] = "Asia/Jakarta"  # times on web pages
    language: Literal["id", "en"] = "id"  # pages' default; ?lang=en|id switches
    session_ttl_s: Annotated[float | int, Field(gt=0)] = 8 * 3600  # a login lasts this long
    # The wallboard (a TV cannot log in): open to anyone, or only with a kiosk token
    # (/wallboard?token=...) or a logged-in user.
    wallboard_open: bool = False
    kiosk_tokens: tuple[Annotated[str, AfterValidator(_kiosk_token)], ...] = Field(
        default=(), repr=False)
    users: tuple[WebUser, ...] = ()


THRESHOLD_METRICS = ("service_level", "abandon_rate", "asa_s", "calls_waiting",
                     "longest_wait_s", "agents_available")
# Figures over a sliding window (window_s); the others are instantaneous.
WINDOWED_METRICS = frozenset({"service_level", "abandon_rate", "asa_s"})


_RULE_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def _rule_name(value: str) -> str:
    if not _RULE_NAME_RE.fullmatch(value):
        raise ValueError(f"must be a Prometheus-style name ([A-Za-z_][A-Za-z0-9_]*): {value!r}")
    return value


class ThresholdRule(_Model):
    """An alert (CMS-4): raised while `metric op value` holds (for `for_s`), cleared after."""

    name: Annotated[str, AfterValidator(_rule_name)]  # unique; the alert's name everywhere
    metric: Literal["service_level", "abandon_rate", "asa_s", "calls_waiting",
                    "longest_wait_s", "agents_available"]
    op: Literal["<", "<=", ">", ">="]
    value: float | int  # ratios 0-1 (service_level, abandon_rate), seconds, or a count
    window_s: Annotated[int, Field(gt=0)] = 1800  # for service_level, abandon_rate, asa_s
    for_s: Annotated[float | int, Field(ge=0)] = 0  # must hold this long before it is raised
    queues: tuple[NonEmpty, ...] = ()  # empty: every queue
    severity: Literal["warning", "critical"] = "warning"

    @model_validator(mode="after")
    def _ratio_range(self) -> ThresholdRule:
        if self.metric in ("service_level", "abandon_rate") and not 0 <= self.value <= 1:
            raise ValueError(f"{self.metric} is a ratio: value must be within 0..1")
        return self


class ReportingConfig(_Model):
    """CMS figures (docs/metrics.md): intervals, service level, refresh, thresholds."""

    # The switch runs the reporting service itself; false when `softswitch reporting` runs it
    # as its own process on the NATS bus (then [reporting] listen is where it serves the web).
    embedded: bool = True
    listen: Annotated[str, AfterValidator(_host_port)] = "127.0.0.1:8081"
    # JetStream durable consumer of `softswitch reporting` (its position survives restarts)
    durable: Annotated[str, Field(pattern=_NATS_NAME)] = "softswitch-reporting"
    interval_min: Literal[5, 10, 15, 30, 60] = 15  # interval buckets (CMS-5)
    sl_threshold_s: Annotated[float | int, Field(gt=0)] = 20  # service level T
    sl_thresholds: dict[str, Annotated[float | int, Field(gt=0)]] = {}  # per queue T
    short_abandon_s: Annotated[float | int, Field(ge=0)] = 5
    sl_formula: Literal["default", "ignore_abandons", "abandons_against",
                        "abandons_in_favour"] = "default"
    refresh_s: Annotated[float | int, Field(gt=0, le=5)] = 2  # real-time pages (CMS-3)
    thresholds: tuple[ThresholdRule, ...] = ()

    @field_validator("thresholds")
    @classmethod
    def _unique_rule_names(cls, value: tuple[ThresholdRule, ...]) -> tuple[ThresholdRule, ...]:
        names = [r.name for r in value]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"threshold names must be unique: {', '.join(dup)}")
        return value

    def sl_threshold(self, queue: str) -> float:
        return float(self.sl_thresholds.get(queue, self.sl_threshold_s))


class ContactCentreConfig(_Model):
    # Prompts live in <prompts>/<language>/<name>.wav, relative to the file defining this.
    prompts: str = Field(default="prompts", validate_default=True)
    language: str = "id"
    pin_failures: PositiveInt = 3  # wrong PINs in a row from one phone before a lockout ...
    lockout_s: PositiveInt = 300  # ... of this many seconds
    digit_timeout_s: Annotated[float | int, Field(gt=0)] = 10  # between keys when collecting
    # Messages callers leave (voicemail node): <voicemail_dir>/YYYY/MM/DD/<call-id>.wav,
    # relative to the file defining this; at most voicemail_max_s seconds each.
    voicemail_dir: str = Field(default="var/voicemail", validate_default=True)
    voicemail_max_s: Annotated[float | int, Field(gt=0)] = 120

    @field_validator("voicemail_dir")
    @classmethod
    def _voicemail_dir(cls, value: str, info: ValidationInfo) -> str:
        base = (info.context or {}).get("base_dirs", {}).get("contact_centre")
        path = Path(value).expanduser()
        if not path.is_absolute():
            path = Path(base or Path.cwd()) / path
        return str(path)

    @field_validator("prompts")
    @classmethod
    def _prompts_dir(cls, value: str, info: ValidationInfo) -> str:
        base = (info.context or {}).get("base_dirs", {}).get("contact_centre")
        path = Path(value).expanduser()
        if not path.is_absolute():
            path = Path(base or DEFAULT_MOH.parent.parent) / path
        if not path.is_dir():
            raise ValueError(f"directory not found: {path}")
        return str(path)

    def prompt(self, name: str, language: str | None = None) -> Path:
        return Path(self.prompts) / (language or self.language) / f"{name}.wav"


class Config(_Model):
    sip: SipConfig = SipConfig()
    registrar: RegistrarConfig = RegistrarConfig()
    auth: AuthConfig = AuthConfig()
    http: HttpConfig = HttpConfig()
    store: StoreConfig = StoreConfig()
    events: EventsConfig = EventsConfig()
    log: LogConfig = LogConfig()
    media: MediaConfig = MediaConfig()
    calls: CallsConfig = CallsConfig()
    web: WebConfig = WebConfig()
    reporting: ReportingConfig = ReportingConfig()
    users: tuple[UserConfig, ...] = ()
    contact_centre: ContactCentreConfig = ContactCentreConfig()
    agents: tuple[AgentEntry, ...] = ()
    queues: tuple[QueueEntry, ...] = ()
    priority_rules: tuple[PriorityRuleEntry, ...] = ()
    services: tuple[ServiceEntry, ...] = ()

    _source_path: Path = PrivateAttr(default=Path("."))
    _files: tuple[Path, ...] = PrivateAttr(default=())

    @property
    def source_path(self) -> Path:
        """The main configuration file (absolute)."""
        return self._source_path

    @property
    def files(self) -> tuple[Path, ...]:
        """Every file read, main file first, includes in the order they were read."""
        return self._files


# --------------------------------------------------------------------------- loading


@dataclass
class _Merged:
    """The merged TOML document and where each part came from."""

    data: dict[str, Any] = field(default_factory=dict)
    key_origin: dict[str, Path] = field(default_factory=dict)
    # For list keys: the (file, index in that file) of every merged element.
    item_origin: dict[str, list[tuple[Path, int]]] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)


class _Loader:
    def __init__(self, main: Path) -> None:
        self.main = main
        self.merged = _Merged()
        self.errors: list[str] = []

    def name(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.main.parent))
        except ValueError:
            return str(path)

    def prefix(self, path: Path) -> str:
        return "" if path == self.main else f"{self.name(path)}: "

    def read(self, path: Path, chain: tuple[Path, ...], origin: str) -> None:
        if path in chain:
            cycle = " -> ".join(self.name(p) for p in (*chain, path))
            self.errors.append(f"{origin}include cycle: {cycle}")
            return
        if path in self.merged.files:
            self.errors.append(f"{origin}{self.name(path)} is included more than once")
            return
        try:
            with path.open("rb") as fh:
                doc = tomllib.load(fh)
        except OSError as exc:
            self.errors.append(f"{origin}cannot read {self.name(path)}: {exc.strerror or exc}")
            return
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            # tomllib's message ends with "(at line N, column M)".
            self.errors.append(f"{self.name(path)}: TOML syntax error: {exc}")
            return
        self.merged.files.append(path)
        includes = doc.pop("include", [])
        self.merge(path, doc)
        here = self.prefix(path)
        if isinstance(includes, str):
            includes = [includes]
        if not isinstance(includes, list):
            self.errors.append(f"{here}include: must be a list of file names")
            return
        for i, entry in enumerate(includes):
            if not isinstance(entry, str) or not entry:
                self.errors.append(f"{here}include[{i}]: must be a file name")
                continue
            target = (path.parent / entry).resolve()
            self.read(target, (*chain, path), f"{here}include[{i}]: ")

    def merge(self, path: Path, doc: dict[str, Any]) -> None:
        merged = self.merged
        for key, value in doc.items():
            if key not in merged.data:
                merged.data[key] = value
                merged.key_origin[key] = path
                if isinstance(value, list):
                    merged.item_origin[key] = [(path, i) for i in range(len(value))]
            elif isinstance(value, list) and isinstance(merged.data[key], list):
                merged.data[key] = merged.data[key] + value
                merged.item_origin[key] += [(path, i) for i in range(len(value))]
            else:
                first = self.name(merged.key_origin[key])
                self.errors.append(
                    f"{self.prefix(path)}{key}: already defined in {first}"
                    if merged.key_origin[key] != path
                    else f"{self.prefix(path)}{key}: defined twice"
                )

    def locate(self, loc: Sequence[str | int]) -> str:
        """Render a pydantic location as a key path, prefixed with its file."""
        if not loc:
            return self.name(self.main)
        key = str(loc[0])
        rest = list(loc[1:])
        path = self.merged.key_origin.get(key, self.main)
        if rest and isinstance(rest[0], int) and key in self.merged.item_origin:
            items = self.merged.item_origin[key]
            if 0 <= rest[0] < len(items):
                path, rest[0] = items[rest[0]]
        text = key + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in rest)
        return f"{self.prefix(path)}{text}"


def _message(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required"
    message = str(error["msg"])
    if kind == "value_error":
        message = message.removeprefix("Value error, ")
    if kind in ("int_type", "string_type", "tuple_type", "bool_type", "model_type"):
        message += f", got {type(error['input']).__name__} {error['input']!r}"[:120]
    return message


def _to_tuples(value: Any) -> Any:
    # Strict mode only accepts tuples for tuple fields; TOML arrays are lists.
    if isinstance(value, list):
        return tuple(_to_tuples(v) for v in value)
    if isinstance(value, dict):
        return {k: _to_tuples(v) for k, v in value.items()}
    return value


def _cross_checks(loader: _Loader) -> Iterator[str]:
    """Checks spanning several items, made on the raw data so they run alongside pydantic's."""
    data = loader.merged.data
    sip = data.get("sip")
    listen = sip.get("listen") if isinstance(sip, dict) else None
    if isinstance(listen, list):
        seen: dict[tuple[str, str, int], int] = {}
        for i, entry in enumerate(listen):
            try:
                t, host, port = parse_listen(entry) if isinstance(entry, str) else ("", "", 0)
            except ValueError:
                continue
            if not t:
                continue
            # Two stream transports on one address need the same TCP socket.
            family = "tcp" if t in _STREAM_TRANSPORTS else "udp"
            first = seen.setdefault((family, host, port), i)
            if first != i:
                what = "duplicate of" if listen[first] == entry else "same TCP socket as"
                yield (
                    f"{loader.locate(('sip', 'listen', i))}: {what} "
                    f"sip.listen[{first}] ({listen[first]!r})"
                )
    users = data.get("users")
    if isinstance(users, list):
        first_by_ext: dict[str, int] = {}
        for i, user in enumerate(users):
            ext = user.get("extension") if isinstance(user, dict) else None
            if not isinstance(ext, str):
                continue
            first = first_by_ext.setdefault(ext, i)
            if first != i:
                yield (
                    f"{loader.locate(('users', i, 'extension'))}: duplicate of "
                    f"{loader.locate(('users', first))} ({ext!r})"
                )


def _semantic_checks(config: Config, loader: _Loader) -> Iterator[str]:
    """Checks that need the validated configuration."""
    yield from _contact_centre_checks(config, loader)
    yield from _web_checks(config, loader)
    offered = set(config.auth.algorithms)
    for i, user in enumerate(config.users):
        if user.password is not None or (user.ha1 is None and user.ha1_sha256 is None):
            continue  # a password, or a gateway with only a static contact
        usable = {"MD5"} if user.ha1 else set()
        usable |= {"SHA-256"} if user.ha1_sha256 else set()
        if not usable & offered:
            yield (
                f"{loader.locate(('users', i))}: has only {'/'.join(sorted(usable))} HA1 "
                f"but auth.algorithms offers {', '.join(config.auth.algorithms)}"
            )


def _contact_centre_checks(config: Config, loader: _Loader) -> Iterator[str]:
    queues = {q.name for q in config.queues}
    extensions = {u.extension for u in config.users}
    for kind, items in (("queues", [q.name for q in config.queues]),
                        ("agents", [a.id for a in config.agents]),
                        ("services", [s.number for s in config.services])):
        seen: dict[str, int] = {}
        for i, key in enumerate(items):
            first = seen.setdefault(key, i)
            if first != i:
                yield f"{loader.locate((kind, i))}: duplicate of {loader.locate((kind, first))}"
    for i, agent in enumerate(config.agents):
        for name in agent.queues:
            if name not in queues:
                yield f"{loader.locate(('agents', i, 'queues', name))}: no such queue"
    for i, service in enumerate(config.services):
        if service.queue is not None and service.queue not in queues:
            yield f"{loader.locate(('services', i, 'queue'))}: no such queue {service.queue!r}"
        for where, action in service.actions():
            if action.queue is not None and action.queue not in queues:
                yield (f"{loader.locate(('services', i, *where, 'queue'))}: "
                       f"no such queue {action.queue!r}")
            if action.transfer is not None and action.transfer not in extensions:
                yield (f"{loader.locate(('services', i, *where, 'transfer'))}: "
                       f"no user has extension {action.transfer!r}")
        if service.number in extensions:
            yield f"{loader.locate(('services', i, 'number'))}: is also a user's extension"
    takes_messages = [(i, where) for i, service in enumerate(config.services)
                      for where, action in service.actions() if action.voicemail]
    if takes_messages:
        problem = _unwritable(Path(config.contact_centre.voicemail_dir))
        if problem is not None:
            yield f"{loader.locate(('contact_centre', 'voicemail_dir'))}: {problem}"
    for i, service in enumerate(config.services):
        prompts: list[tuple[tuple[str, ...], str]] = [
            ((key,), getattr(service, key)) for key in ("greeting", "after_hours")]
        if service.menu is not None:
            prompts += [(("menu", "prompt"), service.menu.prompt),
                        (("menu", "invalid"), service.menu.invalid)]
            prompts += [((*where, "info"), a.info) for where, a in service.actions()
                        if a.info is not None]
        queued = {service.queue} | {a.queue for _, a in service.actions()}
        by_name = {q.name: q for q in config.queues}
        if any(by_name[q].announce_welcome or by_name[q].announce_every_s
               for q in queued if q in by_name):
            prompts += [(("language",), name) for name in ANNOUNCEMENT_PROMPTS]
        if any(by_name[q].survey for q in queued if q in by_name):
            prompts += [(("language",), name) for name in SURVEY_PROMPTS]
        for where, action in service.actions():
            if action.voicemail:
                prompts += [((*where, "voicemail"), name) for name in VOICEMAIL_PROMPTS]
            if action.transfer is not None:
                prompts.append(((*where, "transfer"), "unavailable"))
        for where, name in prompts:
            wav = config.contact_centre.prompt(name, service.language)
            if not wav.is_file():
                yield f"{loader.locate(('services', i, *where))}: prompt not found: {wav}"


def _web_checks(config: Config, loader: _Loader) -> Iterator[str]:
    agents = {a.id for a in config.agents}
    seen: dict[str, int] = {}
    for i, user in enumerate(config.web.users):
        first = seen.setdefault(user.name, i)
        if first != i:
            yield f"{loader.locate(('web', 'users', i, 'name'))}: duplicate of web.users[{first}]"
        if user.agent is not None and user.agent not in agents:
            yield f"{loader.locate(('web', 'users', i, 'agent'))}: no such agent {user.agent!r}"


def _unwritable(path: Path) -> str | None:
    """Why messages cannot be written under `path` (created if missing), or None."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"cannot create {path}: {exc.strerror or exc}"
    if not path.is_dir():
        return f"not a directory: {path}"
    if not os.access(path, os.W_OK | os.X_OK):
        return f"not writable: {path}"
    return None


def load_config(path: str | Path) -> Config:
    """Read, merge and validate the configuration at `path`; raise `ConfigError` if bad."""
    main = Path(path).expanduser().resolve()
    loader = _Loader(main)
    loader.read(main, (), "")
    if not loader.merged.files:  # the main file itself could not be read or parsed
        raise ConfigError(loader.errors)
    errors = loader.errors
    data = dict(loader.merged.data)
    base_dirs = {key: str(origin.parent) for key, origin in loader.merged.key_origin.items()}
    config: Config | None = None
    try:
        config = Config.model_validate(_to_tuples(data), context={"base_dirs": base_dirs})
    except ValidationError as exc:
        errors += [f"{loader.locate(e['loc'])}: {_message(e)}" for e in exc.errors()]
    errors += _cross_checks(loader)
    if config is not None:
        errors += _semantic_checks(config, loader)
    if errors or config is None:
        raise ConfigError(errors)
    config._source_path = main
    config._files = tuple(loader.merged.files)
    return config
