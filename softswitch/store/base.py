"""The `Store` interface every backend implements, and the shared migration loader.

Migrations are SQL files ``migrations/<dialect>/NNNN_name.sql``, applied in version order at
`open()`, each in its own transaction together with its row in ``schema_migrations``. A file
must not contain its own BEGIN/COMMIT.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from types import TracebackType
from typing import Any, NamedTuple

import msgpack

from reporting.aggregate import AGENT_COUNTS, QUEUE_COUNTS
from reporting.events import ReportEvent, from_dict

__all__ = ["Binding", "Cdr", "CdrFilter", "LoggedEvent", "Migration", "ReportRow", "Store",
           "StoreError", "SurveyResult", "Voicemail", "encode_event", "load_migrations"]

_MIGRATION_RE = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")


class StoreError(Exception):
    """The store cannot be used: bad URL, broken migration set, newer schema, ..."""


class Binding(NamedTuple):
    """One registrar binding (RFC 3261 §10.3); the key is ``(aor, contact)``.

    A named tuple whose fields are the store's columns in order, so it is the row the stores
    write. The registrar makes one per REGISTER: a frozen dataclass cost four times as much to
    build (1.1 µs against 0.25 µs here).
    """

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


@dataclass(slots=True)  # not frozen: built by the thousand for a report (frozen init is slow)
class ReportRow:
    """One stored report row (CMS-5): a closed interval (`start` set) or a day's rollup
    (`start` None, `interval_s` 0) of one queue or one agent.

    `counts` has the additive figures of reporting/aggregate.py (QUEUE_COUNTS / AGENT_COUNTS,
    seconds for times; `max_wait` is a maximum); `aux` the aux seconds by reason (agents);
    `login`/`logoff` the first login and the last logoff in the period (agents).
    """

    kind: str  # "queue" | "agent"
    name: str
    day: str  # local day (YYYY-MM-DD, the configured timezone) of the interval's start
    start: float | None
    interval_s: float
    counts: dict[str, float]
    aux: dict[str, float] = field(default_factory=dict)
    login: float | None = None
    logoff: float | None = None


REPORT_KINDS = ("queue", "agent")
REPORT_GROUPS = ("interval", "day")


def report_counts(kind: str) -> tuple[str, ...]:
    if kind == "queue":
        return QUEUE_COUNTS
    if kind == "agent":
        return AGENT_COUNTS
    raise ValueError(f"report kind must be queue or agent, not {kind!r}")


def report_columns(kind: str) -> tuple[str, ...]:
    """Stored figure columns of `kind` (the counts, then login/logoff for agents)."""
    counts = report_counts(kind)
    return (*counts, "login", "logoff") if kind == "agent" else counts


def report_upsert_sql(kind: str, mark: str) -> str:
    """Insert-or-replace of one interval row; `mark` "?" (sqlite) or "$" (postgres)."""
    cols = (kind, "start_ts", "interval_s", "day", *report_columns(kind))
    marks = ", ".join("?" if mark == "?" else f"${i}" for i in range(1, len(cols) + 1))
    updates = ", ".join(f"{c} = excluded.{c}" for c in cols[2:])
    return (f"INSERT INTO report_{kind}_intervals ({', '.join(cols)}) VALUES ({marks})"
            f" ON CONFLICT ({kind}, start_ts) DO UPDATE SET {updates}")


def report_values(row: ReportRow) -> tuple[Any, ...]:
    counts = row.counts
    values = [row.name, row.start, row.interval_s, row.day,
              *(float(counts.get(c, 0.0)) for c in report_counts(row.kind))]
    if row.kind == "agent":
        values += [row.login, row.logoff]
    return tuple(values)


def rollup_sql(kind: str, where: str, dialect: str) -> list[str]:
    """Statements recomputing the day rows of `kind` for the days `where` selects (a
    condition on `day`) from the stored intervals: delete, then sum (max for max_wait, first
    login, last logoff).

    Sums run in interval order: floating-point addition is not associative, and the day rows
    of a rebuild must equal the live ones to the last bit, whatever order the rows were
    written or stored in (PostgreSQL: ORDER BY in the aggregate; SQLite: an ordered source).
    """
    if dialect == "postgres":
        def agg(fn: str, c: str) -> str:
            return f"{fn}({c} ORDER BY start_ts)" if fn == "sum" else f"{fn}({c})"
        source = f"report_{kind}_intervals AS i WHERE {where}"
        aux_source = f"report_agent_interval_aux AS x WHERE {where}"
    else:
        def agg(fn: str, c: str) -> str:
            return f"{fn}({c})"
        source = (f"(SELECT * FROM report_{kind}_intervals WHERE {where}"
                  f" ORDER BY {kind}, day, start_ts) AS i")
        aux_source = (f"(SELECT * FROM report_agent_interval_aux WHERE {where}"
                      " ORDER BY agent, day, reason, start_ts) AS x")
    aggs = []
    for c in report_columns(kind):
        aggs.append(agg({"max_wait": "max", "login": "min", "logoff": "max"}.get(c, "sum"), c))
    cols = ", ".join(report_columns(kind))
    out = [f"DELETE FROM report_{kind}_days WHERE {where}",
           f"INSERT INTO report_{kind}_days ({kind}, day, {cols})"
           f" SELECT {kind}, day, {', '.join(aggs)} FROM {source} GROUP BY {kind}, day"]
    if kind == "agent":
        out += ["DELETE FROM report_agent_day_aux WHERE " + where,
                "INSERT INTO report_agent_day_aux (agent, day, reason, seconds)"
                f" SELECT agent, day, reason, {agg('sum', 'seconds')} FROM {aux_source}"
                " GROUP BY agent, day, reason"]
    return out


def report_select_sql(kind: str, group: str) -> str:
    """SELECT of stored rows (WHERE added by the caller): name, day, start, interval, figures."""
    cols = ", ".join(report_columns(kind))
    if group == "interval":
        return f"SELECT {kind}, day, start_ts, interval_s, {cols} FROM report_{kind}_intervals"
    if group == "day":
        return f"SELECT {kind}, day, NULL, 0, {cols} FROM report_{kind}_days"
    raise ValueError(f"report group must be interval or day, not {group!r}")


def report_sum_sql(kind: str, source: str, period: str, combine: bool, where: str,
                   dialect: str, *, limit: int | None = None) -> tuple[str, str | None]:
    """SELECTs summing stored rows of `kind` from the `source` table ("interval"/"day") by
    `period` ("interval", "day", "total") and name (or over all names when `combine`):
    the figures (name, day, start, interval_s, columns...) in `report_keyset` order, at most
    `limit` rows, and, for agents, the aux seconds (name, key, reason, seconds) of the same
    `where` (the caller bounds it to the figures' rows).

    A row per name and per stored period (`period` == `source`, not `combine`) is the stored
    row itself (a sum of one row is that row): read as it is, no GROUP BY — the one report
    that returns every stored row streams straight off the start index."""
    if period == "interval" and source != "interval":
        raise ValueError("interval periods come from interval rows")
    table = f"report_{kind}_{'intervals' if source == 'interval' else 'days'}"
    name = "'*'" if combine else kind
    if period == "interval":
        key_cols, key, group_key = "min(day), start_ts, max(interval_s)", "start_ts", "start_ts"
    elif period == "day":
        key_cols, key, group_key = "day, NULL, 0", "day", "day"
    else:
        key_cols, key, group_key = "'', NULL, 0", "''", ""
    order = ", ".join(report_keyset(kind, period, combine, dialect))
    tail = (f" ORDER BY {order}" if order else "") + (f" LIMIT {int(limit)}" if limit else "")
    cols = report_columns(kind)
    if period == source and not combine:
        first = "day, start_ts, interval_s" if period == "interval" else "day, NULL, 0"
        figures = f"SELECT {kind}, {first}, {', '.join(cols)} FROM {table}{where}{tail}"
    else:
        groups = [g for g in ((None if combine else kind), group_key) if g]
        group_by = f" GROUP BY {', '.join(groups)}" if groups else ""
        aggs = []
        for c in cols:
            fn = {"max_wait": "max", "login": "min", "logoff": "max"}.get(c, "sum")
            aggs.append(f"{fn}({c})")
        figures = (f"SELECT {name}, {key_cols}, {', '.join(aggs)} FROM {table}{where}"
                   f"{group_by} HAVING count(*) > 0{tail}")
    aux = None
    if kind == "agent":
        groups = [g for g in ((None if combine else kind), group_key) if g]
        collate = ' COLLATE "C"' if dialect == "postgres" else ""
        aux_table = ("report_agent_interval_aux" if source == "interval"
                     else "report_agent_day_aux")
        aux_groups = ", ".join([*groups, "reason"])
        aux = (f"SELECT {name}, {key}, reason, sum(seconds) FROM {aux_table}{where}"
               f" GROUP BY {aux_groups} ORDER BY reason{collate}")
    return figures, aux


def report_keyset(kind: str, period: str, combine: bool, dialect: str) -> tuple[str, ...]:
    """The columns a report of `period` rows is ordered by (and paged on, keyset): the period
    key (``start_ts``/``day``; none for totals), then the name (none when `combine`), the name
    in byte order (PostgreSQL: ``COLLATE "C"``)."""
    cols = []
    if period == "interval":
        cols.append("start_ts")
    elif period == "day":
        cols.append("day")
    if not combine:
        cols.append(f'{kind} COLLATE "C"' if dialect == "postgres" else kind)
    return tuple(cols)


def report_key(row: ReportRow, period: str, combine: bool) -> tuple[Any, ...]:
    """The keyset values of `row` (`report_keyset` order): where the next page starts."""
    key: list[Any] = []
    if period == "interval":
        key.append(row.start)
    elif period == "day":
        key.append(row.day)
    if not combine:
        key.append(row.name)
    return tuple(key)


def keyset_sql(cols: Sequence[str], values: Sequence[Any], op: str,
               mark: Callable[[Any], str]) -> str:
    """``(cols) > (values)`` (`op` ">") or ``<=`` in lexicographic order, written out so an
    index on the first column bounds the scan; `mark(value)` adds a parameter, returns its
    placeholder."""
    if len(cols) != len(values) or not cols:
        raise ValueError("keyset: one value per column")
    strict = op == ">"
    if op not in (">", "<="):
        raise ValueError(f"keyset op must be > or <=, not {op!r}")
    first = cols[0]
    if len(cols) == 1:
        return f"{first} {op} {mark(values[0])}"
    # Placeholders in text order ("?" is positional).
    a, b, c = mark(values[0]), mark(values[0]), mark(values[0])
    rest = keyset_sql(cols[1:], values[1:], op, mark)
    bound, beyond = (">=", ">") if strict else ("<=", "<")
    return f"{first} {bound} {a} AND ({first} {beyond} {b} OR ({first} = {c} AND {rest}))"


def report_where(dialect: str, kind: str, start: float | None, end: float | None,
                 first_day: str | None, last_day: str | None,
                 names: Sequence[str] | None, keyset: Sequence[str] = (),
                 after: Sequence[Any] | None = None,
                 upto: Sequence[Any] | None = None) -> tuple[str, list[Any]]:
    """The WHERE clause (with its arguments) of a report query on `dialect`'s placeholders:
    the time range (interval starts or local days), the names, and a keyset page bound
    (after `after`, up to `upto`)."""
    clauses: list[str] = []
    args: list[Any] = []

    def mark(value: Any) -> str:
        args.append(value)
        return f"${len(args)}" if dialect == "postgres" else "?"

    for column, op, value in (("start_ts", ">=", start), ("start_ts", "<", end),
                              ("day", ">=", first_day), ("day", "<=", last_day)):
        if value is not None:
            clauses.append(f"{column} {op} {mark(value)}")
    if names is not None:
        if dialect == "postgres":
            clauses.append(f"{kind} = ANY({mark(list(names))}::text[])")
        else:
            clauses.append(f"{kind} IN ({', '.join(mark(n) for n in names)})")
    if after is not None:
        clauses.append(keyset_sql(keyset, after, ">", mark))
    if upto is not None:
        clauses.append(keyset_sql(keyset, upto, "<=", mark))
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


def summed_rows(kind: str, period: str, records: Sequence[Sequence[Any]],
                aux_records: Sequence[Sequence[Any]]) -> list[ReportRow]:
    """ReportRows from `report_sum_sql` results."""
    aux: dict[tuple[str, Any], dict[str, float]] = {}
    for name, key, reason, seconds in aux_records:
        k = float(key) if period == "interval" else key
        aux.setdefault((name, k), {})[reason] = float(seconds)
    counts = report_counts(kind)
    n = len(counts)
    out: list[ReportRow] = []
    append = out.append
    if kind == "queue":  # the hot path of big reports: as little per row as can be
        for r in records:
            start = r[2]
            # Sums of NOT NULL double columns over at least one row: floats already.
            append(ReportRow(kind, r[0], r[1], None if start is None else float(start),
                             float(r[3]), dict(zip(counts, r[4:], strict=True))))
        return out
    for r in records:
        name, day, start = r[0], r[1], r[2]
        start = None if start is None else float(start)
        key = start if period == "interval" else (day if period == "day" else "")
        figures = dict(zip(counts, r[4:4 + n], strict=True))
        append(ReportRow(kind, name, day, start, float(r[3]), figures,
                         aux.get((name, key), {}), r[4 + n], r[5 + n]))
    return out


def attach_aux(period: str, rows: Sequence[ReportRow],
               aux_records: Sequence[Sequence[Any]]) -> None:
    """Give agent `rows` their aux seconds from `report_sum_sql` aux results."""
    aux: dict[tuple[str, Any], dict[str, float]] = {}
    for name, key, reason, seconds in aux_records:
        k = float(key) if period == "interval" else key
        aux.setdefault((name, k), {})[reason] = float(seconds)
    for row in rows:
        key = row.start if period == "interval" else (row.day if period == "day" else "")
        row.aux = aux.get((row.name, key), {})


def report_rows(kind: str, records: Sequence[Sequence[Any]],
                aux: dict[tuple[str, Any], dict[str, float]]) -> list[ReportRow]:
    """ReportRows from SELECTed records; `aux` maps (name, start or day) → reasons."""
    counts = report_counts(kind)
    n = len(counts)
    out = []
    agent = kind == "agent"
    for r in records:
        name, day, start = r[0], r[1], r[2]
        figures = dict(zip(counts, map(float, r[4:4 + n]), strict=True))
        if agent:
            reasons = aux.get((name, start if start is not None else day), {})
            out.append(ReportRow(kind, name, day, start, float(r[3]), figures, reasons,
                                 r[4 + n], r[5 + n]))
        else:
            out.append(ReportRow(kind, name, day, None if start is None else float(start),
                                 float(r[3]), figures))
    return out


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

    @abstractmethod
    async def first_event_seq(self, since_ts: float) -> int:
        """The `after_seq` to give `read_events` to start at the first event with
        ``ts >= since_ts`` (0 when that is the first; the last seq when none is that new)."""

    # Reports (CMS-5) --------------------------------------------------------------------

    @abstractmethod
    async def write_report_rows(self, rows: Sequence[ReportRow]) -> None:
        """Insert or replace interval rows by (name, start) — a re-closed interval replaces
        the stored one, it never adds to it — and recompute the day rollups of the days they
        touch, in one transaction."""

    @abstractmethod
    async def replace_report_rows(self, first_day: str, last_day: str,
                                  rows: Sequence[ReportRow]) -> None:
        """Delete every interval row of the days first_day..last_day (inclusive, both kinds),
        write `rows` (intervals of those days) and recompute those days' rollups, in one
        transaction (`softswitch reports rebuild`)."""

    @abstractmethod
    async def read_report_rows(self, kind: str, group: str, *, start: float | None = None,
                               end: float | None = None, first_day: str | None = None,
                               last_day: str | None = None,
                               names: Sequence[str] | None = None) -> list[ReportRow]:
        """Stored rows of `kind` ("queue"/"agent"), `group` "interval" (start in
        [start, end)) or "day" (day in first_day..last_day, inclusive); bounds None are open;
        `names` None: all. Ordered by start (intervals) or day, then name (byte order)."""

    @abstractmethod
    async def sum_report_rows(self, kind: str, source: str, period: str, *,
                              start: float | None = None, end: float | None = None,
                              first_day: str | None = None, last_day: str | None = None,
                              names: Sequence[str] | None = None,
                              combine: bool = False, after: Sequence[Any] | None = None,
                              limit: int | None = None) -> list[ReportRow]:
        """Stored rows of `kind` from the `source` rows ("interval" or "day"; bounds as in
        `read_report_rows`) summed by `period` — "interval" (rows keep `start`), "day"
        (`start` None) or "total" (`day` "") — and by name, or over every name when `combine`
        (name "*"). Counts add up, `max_wait` is the maximum, `login` the first, `logoff`
        the last, aux seconds add up by reason. Ordered by period, then name (byte order).

        Pages (keyset): only rows after `after` — the `report_key` of the last row of the
        previous page — and at most `limit` of them."""

    async def stream_report_rows(self, kind: str, source: str, period: str, *,
                                 start: float | None = None, end: float | None = None,
                                 first_day: str | None = None, last_day: str | None = None,
                                 names: Sequence[str] | None = None, combine: bool = False,
                                 after: Sequence[Any] | None = None,
                                 batch: int = 2000) -> AsyncIterator[list[ReportRow]]:
        """The rows of `sum_report_rows` in batches of at most `batch`, for an export of any
        size in bounded memory. Here: one keyset page per batch (each a short query, so a
        slow reader holds no lock between them); PostgreSQL reads one server-side cursor."""
        while True:
            rows = await self.sum_report_rows(kind, source, period, start=start, end=end,
                                              first_day=first_day, last_day=last_day,
                                              names=names, combine=combine, after=after,
                                              limit=batch)
            if rows:
                yield rows
            if len(rows) < batch or not report_keyset(kind, period, combine, "sqlite"):
                return
            after = report_key(rows[-1], period, combine)

    @abstractmethod
    async def last_report_interval(self) -> float | None:
        """The start of the latest stored interval row (either kind), None when there is none."""

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

