"""The `Store` interface every backend implements, and the shared migration loader.

Migrations are SQL files ``migrations/<dialect>/NNNN_name.sql``, applied in version order at
`open()`, each in its own transaction together with its row in ``schema_migrations``. A file
must not contain its own BEGIN/COMMIT.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from types import TracebackType
from typing import Any

import msgpack

from reporting.events import ReportEvent, from_dict

__all__ = ["Binding", "Cdr", "CdrFilter", "LoggedEvent", "Migration", "Store", "StoreError",
           "SurveyResult", "Voicemail", "encode_event", "load_migrations"]

_MIGRATION_RE = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")


class StoreError(Exception):
    """The store cannot be used: bad URL, broken migration set, newer schema, ..."""


@dataclass(frozen=True, slots=True)
class Binding:
    """One registrar binding (RFC 3261 §10.3); the key is ``(aor, contact)``."""

    aor: str
    contact: str
    expires_at: float  # Unix epoch seconds
    q: float | None
    call_id: str
    cseq: int
    received: str | None  # where the REGISTER came from, e.g. "udp:203.0.113.5:5062"
    user_agent: str
    instance_id: str | None  # RFC 5626 §4.1 +sip.instance
    reg_id: int | None  # RFC 5626 §4.2 reg-id

    @property
    def key(self) -> tuple[str, str]:
        return (self.aor, self.contact)


@dataclass(frozen=True, slots=True)
class Cdr:
    """One call detail record: one per call, written when the call ends."""

    call_id: str  # Call-ID of the caller's leg
    caller: str
    callee: str
    started_at: float  # Unix epoch seconds: INVITE received
    answered_at: float | None  # 2xx sent to the caller; None when never answered
    ended_at: float
    duration: float  # ended_at - started_at, seconds
    billable: float  # ended_at - answered_at, seconds (0 when unanswered)
    disposition: str  # answered, busy, rejected, no_answer, cancelled, not_found, ...
    hangup_cause: str  # "bye", a SIP status such as "486", "ring_timeout", "rtp_timeout"
    hangup_side: str  # caller, callee or switch


@dataclass(frozen=True, slots=True)
class SurveyResult:
    """One customer-satisfaction answer (ACC-8): the score the caller keyed after the call."""

    call_id: str  # Call-ID of the caller's leg (as in its CDR)
    queue: str
    agent: str
    score: int  # 1..5
    at: float  # Unix epoch seconds


SURVEY_COLUMNS = "call_id, queue, agent, score, at"


@dataclass(frozen=True, slots=True)
class Voicemail:
    """One message a caller left (the voicemail call-flow node): where its WAV is."""

    call_id: str  # Call-ID of the caller's leg (as in its CDR)
    service: str  # the service number dialled
    caller: str
    path: str  # the WAV file
    sha256: str  # of the WAV file, hex
    seconds: float  # recorded length
    at: float  # Unix epoch seconds


VOICEMAIL_COLUMNS = "call_id, service, caller, path, sha256, seconds, at"


def voicemail_where(service: str | None, caller: str | None, call_id: str | None,
                    placeholder: str) -> tuple[str, list[object]]:
    """WHERE clause for `Store.list_voicemails`; placeholder "?" (sqlite) or "$" (postgres)."""
    clauses: list[str] = []
    args: list[object] = []
    for column, value in (("service", service), ("caller", caller), ("call_id", call_id)):
        if value is not None:
            args.append(value)
            mark = "?" if placeholder == "?" else f"${len(args)}"
            clauses.append(f"{column} = {mark}")
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), args


def survey_where(queue: str | None, agent: str | None, call_id: str | None,
                 placeholder: str) -> tuple[str, list[object]]:
    """WHERE clause for `Store.list_surveys`; placeholder "?" (sqlite) or "$" (postgres)."""
    clauses: list[str] = []
    args: list[object] = []
    for column, value in (("queue", queue), ("agent", agent), ("call_id", call_id)):
        if value is not None:
            args.append(value)
            mark = "?" if placeholder == "?" else f"${len(args)}"
            clauses.append(f"{column} = {mark}")
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), args


@dataclass(frozen=True, slots=True)
class CdrFilter:
    """Equality filters for `Store.list_cdrs`; None matches anything."""

    caller: str | None = None
    callee: str | None = None
    disposition: str | None = None
    call_id: str | None = None
    since: float | None = None  # started_at >= since
    until: float | None = None  # started_at < until
    number: str | None = None  # caller or callee


CDR_COLUMNS = (
    "call_id, caller, callee, started_at, answered_at, ended_at, duration, billable, "
    "disposition, hangup_cause, hangup_side"
)


def cdr_where(f: CdrFilter, placeholder: str) -> tuple[str, list[object]]:
    """A WHERE clause (or "") and its arguments; `placeholder` is "?" or "$" (numbered)."""
    clauses: list[str] = []
    args: list[object] = []
    for column, op, value in (("caller", "=", f.caller), ("callee", "=", f.callee),
                              ("disposition", "=", f.disposition), ("call_id", "=", f.call_id),
                              ("started_at", ">=", f.since), ("started_at", "<", f.until)):
        if value is None:
            continue
        args.append(value)
        mark = "?" if placeholder == "?" else f"${len(args)}"
        clauses.append(f"{column} {op} {mark}")
    if f.number is not None:
        args.append(f.number)
        mark = "?" if placeholder == "?" else f"${len(args)}"
        if placeholder == "?":
            args.append(f.number)
            clauses.append("(caller = ? OR callee = ?)")
        else:
            clauses.append(f"(caller = {mark} OR callee = {mark})")
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    """One row of the event log: `seq` orders the log (gaps possible), `payload` is msgpack."""

    seq: int
    ts: float
    type: str
    payload: bytes

    def data(self) -> dict[str, Any]:
        """The decoded `to_dict()` map."""
        return dict(msgpack.unpackb(self.payload, raw=False))

    def event(self) -> ReportEvent:
        """The event itself; ValueError for a type this softswitch does not know."""
        return from_dict(self.data())


def encode_event(event: ReportEvent) -> tuple[float, str, bytes]:
    """``(ts, type, payload)`` of the event-log row for `event`."""
    return (float(event.ts), event.type_name, msgpack.packb(event.to_dict(), use_bin_type=True))


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(dialect: str) -> list[Migration]:
    """The migrations shipped for `dialect`, in order; versions must run 1, 2, 3, ..."""
    folder = resources.files("softswitch.store").joinpath("migrations", dialect)
    found: list[Migration] = []
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _MIGRATION_RE.fullmatch(entry.name)
        if match is None:
            raise StoreError(f"migration file name not NNNN_name.sql: {dialect}/{entry.name}")
        found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise StoreError(
                f"{dialect} migrations must be numbered 1, 2, 3, ...: found "
                f"{migration.version:04d}_{migration.name} where {expected:04d} belongs"
            )
    return found


class Store(ABC):
    """Persistent state behind the switch. Methods are batch-oriented: callers buffer."""

    dialect: str

    @abstractmethod
    async def open(self) -> None:
        """Connect and apply pending migrations (idempotent on an up-to-date schema)."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections; safe to call twice."""

    @abstractmethod
    async def schema_version(self) -> int:
        """The highest migration version applied (0 for an empty database)."""

    # Location service -----------------------------------------------------------------

    @abstractmethod
    async def upsert_bindings(self, bindings: Sequence[Binding]) -> None:
        """Insert or replace bindings by ``(aor, contact)`` in one transaction; last wins."""

    @abstractmethod
    async def delete_bindings(self, keys: Sequence[tuple[str, str]]) -> None:
        """Delete bindings by ``(aor, contact)``; absent keys are ignored."""

    @abstractmethod
    async def load_bindings(self) -> list[Binding]:
        """Every stored binding, expired ones included, ordered by ``(aor, contact)``."""

    @abstractmethod
    async def purge_expired(self, wall: float) -> int:
        """Delete bindings with ``expires_at <= wall``; return how many went."""

    # Key/value ------------------------------------------------------------------------

    @abstractmethod
    async def get_meta(self, key: str) -> str | None:
        """The value stored under `key`, or None."""

    @abstractmethod
    async def set_meta(self, key: str, value: str) -> None:
        """Store `value` under `key`, replacing any previous value."""

    # Call detail records -------------------------------------------------------------

    @abstractmethod
    async def write_cdr(self, cdr: Cdr) -> None:
        """Append one call detail record."""

    @abstractmethod
    async def list_cdrs(self, filters: CdrFilter | None = None, limit: int = 100,
                        offset: int = 0) -> list[Cdr]:
        """Records matching `filters`, newest first (by started_at, then call_id)."""

    @abstractmethod
    async def count_cdrs(self, filters: CdrFilter | None = None) -> int:
        """How many records match `filters` (for pagination)."""

    # Customer-satisfaction survey (ACC-8) ---------------------------------------------

    @abstractmethod
    async def write_survey(self, result: SurveyResult) -> None:
        """Append one survey answer."""

    @abstractmethod
    async def list_surveys(self, *, queue: str | None = None, agent: str | None = None,
                           call_id: str | None = None, limit: int = 100) -> list[SurveyResult]:
        """Answers matching the given fields (None: any), newest first (by at, then call_id)."""

    # Voicemail / message-taking (call flows) ------------------------------------------

    @abstractmethod
    async def write_voicemail(self, message: Voicemail) -> None:
        """Index one recorded message."""

    @abstractmethod
    async def list_voicemails(self, *, service: str | None = None, caller: str | None = None,
                              call_id: str | None = None,
                              limit: int = 100) -> list[Voicemail]:
        """Messages matching the given fields (None: any), newest first (by at, then call_id)."""

    # Event log (issue 5) ----------------------------------------------------------------

    @abstractmethod
    async def append_events(self, events: Sequence[ReportEvent]) -> None:
        """Append `events` in order, in one transaction (msgpack of `to_dict()` each)."""

    @abstractmethod
    async def read_events(self, after_seq: int = 0, limit: int = 1000) -> list[LoggedEvent]:
        """Up to `limit` logged events with ``seq > after_seq``, in seq order."""

    async def __aenter__(self) -> Store:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


def check_schema_version(dialect: str, applied: int, migrations: Sequence[Migration]) -> None:
    """Refuse a database migrated by a newer softswitch: its schema is unknown to this one."""
    latest = migrations[-1].version if migrations else 0
    if applied > latest:
        raise StoreError(
            f"{dialect} schema is at version {applied}, newer than this softswitch knows "
            f"({latest}); upgrade softswitch instead"
        )

