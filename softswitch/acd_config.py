"""The contact centre's configuration (issue 4): `[[agents]]`, `[[queues]]`, `[[services]]`.

Pydantic models validated with the rest of `softswitch.toml` (errors by key path), turned
into the ACD engine's frozen `acd.config.AcdConfig` by `build_acd_config()`. Agent PINs are
kept as scrypt hashes (`pin_hash`); a plain `pin` (demo files) is hashed at load and never
kept. `OpeningHours.is_open(wall)` answers IVR-3 (local time, weekly schedule, holidays).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from datetime import date, datetime, time
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from acd.config import AcdConfig, AgentConfig, QueueConfig
from acd.priority import PriorityRule
from acd.strategies import REGISTRY as STRATEGIES

__all__ = [
    "ANNOUNCEMENT_PROMPTS", "NUMBER_PROMPTS", "SURVEY_PROMPTS", "VOICEMAIL_PROMPTS",
    "AgentEntry", "MenuAction", "MenuEntry", "OpeningHours", "PriorityRuleEntry", "QueueEntry",
    "ServiceEntry",
    "build_acd_config", "hash_pin", "verify_pin",
]

# Prompts every language needs when a queue announces (ACD-2) or surveys (ACC-8):
# "you are number" N ["about" M "minutes"], N from number-0 .. number-20 (above: digit by digit).
NUMBER_PROMPTS = tuple(f"number-{n}" for n in range(21))
ANNOUNCEMENT_PROMPTS = ("you-are-number", "wait-about", "minutes", *NUMBER_PROMPTS)
SURVEY_PROMPTS = ("survey", "survey-thanks")
# A voicemail node: "please leave a message after the tone" (the beep is generated).
VOICEMAIL_PROMPTS = ("voicemail",)

_DIGITS = re.compile(r"[0-9]{1,16}")
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPAN = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-4]):([0-5][0-9])")
# scrypt cost: ~50 ms per check on this machine, so guessing PINs offline stays slow.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 1 << 14, 8, 1


def hash_pin(pin: str, *, salt: bytes | None = None) -> str:
    """``scrypt$N$r$p$salt$hash`` (base64) of `pin`."""
    salt = salt if salt is not None else os.urandom(16)
    digest = hashlib.scrypt(pin.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P,
                            dklen=32)
    b64 = base64.b64encode
    return (f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}$"
            f"{b64(salt).decode()}${b64(digest).decode()}")


def verify_pin(pin: str, stored: str) -> bool:
    """Constant-time check of `pin` against a `hash_pin()` string."""
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        want = base64.b64decode(digest)
        got = hashlib.scrypt(pin.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r),
                             p=int(p), dklen=len(want))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


def _digits(value: str) -> str:
    if not _DIGITS.fullmatch(value):
        raise ValueError("must be 1 to 16 digits (keyed on a phone keypad)")
    return value


def _pin_hash(value: str) -> str:
    parts = value.split("$")
    if len(parts) != 6 or parts[0] != "scrypt" or not all(p.isdigit() for p in parts[1:4]):
        raise ValueError("must be scrypt$N$r$p$salt$hash (softswitch hash-pin)")
    return value


def _strategy(value: str) -> str:
    if value not in STRATEGIES:
        raise ValueError(f"unknown strategy {value!r}; one of {', '.join(sorted(STRATEGIES))}")
    return value


def _regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"bad regular expression: {exc}") from None
    return value


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (an IANA name: 'Asia/Jakarta')") from None
    return value


def _spans(value: tuple[str, ...]) -> tuple[str, ...]:
    for span in value:
        m = _SPAN.fullmatch(span)
        if m is None:
            raise ValueError(f"{span!r}: expected HH:MM-HH:MM, e.g. 08:00-17:00")
        if (int(m[1]), int(m[2])) >= (int(m[3]), int(m[4])):
            raise ValueError(f"{span!r}: ends before it starts")
    return value


def _holiday(value: str) -> str:
    try:
        date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r}: expected a date YYYY-MM-DD") from None
    return value


Digits = Annotated[str, AfterValidator(_digits)]
Spans = Annotated[tuple[str, ...], AfterValidator(_spans)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class AgentEntry(_Model):
    id: Digits
    name: str = ""
    pin_hash: Annotated[str, AfterValidator(_pin_hash)]
    queues: dict[str, Annotated[int, Field(ge=0)]] = {}  # queue -> penalty (0 best)
    skills: dict[str, Annotated[int, Field(ge=0)]] = {}
    wrap_up_s: Annotated[float | int, Field(ge=0)] | None = None
    # Overrides the queue's auto_answer for offers to this agent's phone (None: the queue's).
    auto_answer: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _hash_plain_pin(cls, data: Any) -> Any:
        # A demo file may give `pin`; only its hash is kept (never the PIN itself).
        if isinstance(data, dict) and "pin" in data:
            data = dict(data)
            pin = data.pop("pin")
            if "pin_hash" in data:
                raise ValueError("give pin or pin_hash, not both")
            if not isinstance(pin, str) or not _DIGITS.fullmatch(pin) or len(pin) < 4:
                raise ValueError("pin: must be 4 to 16 digits (a string)")
            data["pin_hash"] = hash_pin(pin)
        return data


class PriorityRuleEntry(_Model):
    name: str
    priority_class: Annotated[int, Field(ge=0)]
    caller_prefixes: tuple[str, ...] = ()
    caller_regex: Annotated[str, AfterValidator(_regex)] | None = None
    vip: tuple[str, ...] = ()
    dialled: tuple[str, ...] = ()

    def rule(self) -> PriorityRule:
        return PriorityRule(self.name, self.priority_class, self.caller_prefixes,
                            self.caller_regex, frozenset(self.vip), self.dialled)


class QueueEntry(_Model):
    name: Annotated[str, Field(min_length=1)]
    strategy: Annotated[str, AfterValidator(_strategy)] = "longest_idle"
    ring_timeout_s: Annotated[float | int, Field(gt=0)] = 15
    wrap_up_s: Annotated[float | int, Field(ge=0)] = 0
    auto_answer: bool = False
    ageing_s: Annotated[float | int, Field(gt=0)] | None = None
    max_wait_s: Annotated[float | int, Field(gt=0)] | None = None
    max_length: Annotated[int, Field(gt=0)] | None = None
    overflow: str | None = None  # where max wait/length sends a call; None: prompt, hang up
    # ACD-2: "you are number N, about M minutes" on entry and/or every announce_every_s.
    announce_welcome: bool = False
    announce_every_s: Annotated[float | int, Field(gt=0)] | None = None
    # ACC-8: after the AGENT hangs up, a sampled caller is asked to key a score 1 to 5.
    survey: bool = False
    survey_rate: Annotated[float | int, Field(ge=0, le=1)] = 1.0

    def queue(self) -> QueueConfig:
        return QueueConfig(
            self.name, self.strategy, ring_timeout=float(self.ring_timeout_s),
            auto_answer=self.auto_answer, acw=float(self.wrap_up_s),
            ageing=None if self.ageing_s is None else float(self.ageing_s),
            max_wait=None if self.max_wait_s is None else float(self.max_wait_s),
            max_wait_destination=self.overflow, max_length=self.max_length,
            max_length_destination=self.overflow,
            announce_welcome=self.announce_welcome,
            announce_interval=(None if self.announce_every_s is None
                               else float(self.announce_every_s)))


class OpeningHours(_Model):
    """Weekly opening spans in a time zone; holidays are closed all day. No hours: open."""

    timezone: Annotated[str, AfterValidator(_zone)] = "Asia/Jakarta"
    mon: Spans = ()
    tue: Spans = ()
    wed: Spans = ()
    thu: Spans = ()
    fri: Spans = ()
    sat: Spans = ()
    sun: Spans = ()
    holidays: tuple[Annotated[str, AfterValidator(_holiday)], ...] = ()

    def is_open(self, wall: float) -> bool:
        local = datetime.fromtimestamp(wall, ZoneInfo(self.timezone))
        if local.date().isoformat() in self.holidays:
            return False
        now = local.time()
        for span in getattr(self, _DAYS[local.weekday()]):
            start, _, end = span.partition("-")
            if time.fromisoformat(start) <= now and (
                    end == "24:00" or now < time.fromisoformat(end)):
                return True
        return False


def _menu_key(value: str) -> str:
    if len(value) != 1 or value not in "0123456789*#":
        raise ValueError(f"{value!r}: menu keys are one keypad key, 0-9, * or #")
    return value


class MenuAction(_Model):
    """What a menu choice does (a call-flow node): `queue = NAME` (wait for an agent; with
    `priority` and/or `service_type` set on the call first), `info = PROMPT` (IVR-2: an
    announcement answers the caller, then `then`: hang up or hear the menu again),
    `transfer = "NUMBER"` (ring that extension and bridge it to the caller) or
    `voicemail = true` (take a message: prompt, beep, record until '#' or hang-up)."""

    queue: str | None = None
    info: str | None = None
    transfer: Annotated[str, AfterValidator(_digits)] | None = None
    voicemail: bool = False
    priority: Annotated[int, Field(ge=0)] | None = None  # the call's priority class (ACD-3)
    service_type: Annotated[str, Field(min_length=1)] | None = None
    then: Literal["hangup", "menu"] = "hangup"

    @model_validator(mode="after")
    def _one_action(self) -> MenuAction:
        given = [self.queue is not None, self.info is not None, self.transfer is not None,
                 self.voicemail]
        if sum(given) != 1:
            raise ValueError("give exactly one of queue, info, transfer or voicemail")
        if self.queue is None and (self.priority is not None or self.service_type is not None):
            raise ValueError("priority and service_type go with a queue action")
        return self


class MenuEntry(_Model):
    """A keypad menu after the greeting (IVR-2). No key within `timeout_s`, or a key with no
    option: the `invalid` prompt and the menu again, `retries` times; then `default` (None:
    the `unavailable` prompt and hang-up)."""

    prompt: str = "menu"
    options: Annotated[dict[Annotated[str, AfterValidator(_menu_key)], MenuAction],
                       Field(min_length=1)]
    timeout_s: Annotated[float | int, Field(gt=0)] = 5
    retries: Annotated[int, Field(ge=0)] = 2
    invalid: str = "invalid"
    default: MenuAction | None = None


class ServiceEntry(_Model):
    number: Annotated[str, Field(min_length=1)]
    queue: str | None = None  # without a menu: required; with one, the menu's choices decide
    menu: MenuEntry | None = None
    greeting: str = "greeting"  # a prompt name under [contact_centre] prompts/<language>/
    after_hours: str = "after-hours"
    # After the after-hours prompt: None hangs up; an action (voicemail, transfer, ...) instead.
    after_hours_action: MenuAction | None = None
    language: str | None = None  # None: the centre's default
    hours: OpeningHours | None = None  # None: open at all hours

    @model_validator(mode="after")
    def _queue_or_menu(self) -> ServiceEntry:
        if self.queue is None and self.menu is None:
            raise ValueError("give a queue or a menu")
        return self

    def actions(self) -> list[tuple[tuple[str, ...], MenuAction]]:
        """Every menu action with its key path below the service (for validation)."""
        out: list[tuple[tuple[str, ...], MenuAction]] = []
        if self.after_hours_action is not None:
            out.append((("after_hours_action",), self.after_hours_action))
        if self.menu is None:
            return out
        out += [(("menu", "options", key), a) for key, a in self.menu.options.items()]
        if self.menu.default is not None:
            out.append((("menu", "default"), self.menu.default))
        return out


def build_acd_config(agents: tuple[AgentEntry, ...], queues: tuple[QueueEntry, ...],
                     rules: tuple[PriorityRuleEntry, ...]) -> AcdConfig:
    return AcdConfig.build(
        (q.queue() for q in queues),
        (AgentConfig(a.id, dict(a.queues), dict(a.skills),
                     None if a.wrap_up_s is None else float(a.wrap_up_s)) for a in agents),
        priority_rules=tuple(r.rule() for r in rules))
