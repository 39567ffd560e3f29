"""SQLite store through aiosqlite: the embedded default (one file, WAL journal)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import aiosqlite

from reporting.events import ReportEvent
from softswitch.store.base import (
    CDR_COLUMNS,
    SURVEY_COLUMNS,
    VOICEMAIL_COLUMNS,
    Binding,
    Cdr,
    CdrFilter,
    LoggedEvent,
    ReportRow,
    Store,
    StoreError,
    SurveyResult,
    Voicemail,
    attach_aux,
    cdr_where,
    check_schema_version,
    encode_event,
    load_migrations,
    report_key,
    report_keyset,
    report_rows,
    report_select_sql,
    report_sum_sql,
    report_upsert_sql,
    report_values,
    report_where,
    rollup_sql,
    summed_rows,
    survey_where,
    voicemail_where,
)

__all__ = ["SqliteStore"]

MEMORY = ":memory:"

_COLUMNS = (
    "aor, contact, expires_at, q, call_id, cseq, received, user_agent, instance_id, reg_id"
)
_UPSERT = f"""
INSERT INTO location_bindings ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (aor, contact) DO UPDATE SET
    expires_at = excluded.expires_at, q = excluded.q, call_id = excluded.call_id,
    cseq = excluded.cseq, received = excluded.received, user_agent = excluded.user_agent,
    instance_id = excluded.instance_id, reg_id = excluded.reg_id
"""


class SqliteStore(Store):
    """`path` is a file path (parent folders are created) or ``":memory:"``."""

    dialect = "sqlite"

    def __init__(self, path: str | Path) -> None:
        self.path = path if path == MEMORY else Path(path).absolute()
        self._db: aiosqlite.Connection | None = None
        # One connection: a transaction spans several awaits, so writers take turns.
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r})"

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StoreError("store is not open")
        return self._db

    async def open(self) -> None:
        if self._db is not None:
            return
        if isinstance(self.path, Path):
            self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: no implicit transactions; every write says BEGIN itself.
        db = await aiosqlite.connect(str(self.path), isolation_level=None)
        try:
            # WAL: readers do not block the writer; NORMAL sync is durable across crashes of
            # the process (only an OS crash may lose the last commits), as WAL docs explain.
            await db.execute("PRAGMA journal_mode = WAL")
            await db.execute("PRAGMA synchronous = NORMAL")
            await db.execute("PRAGMA foreign_keys = ON")
            await db.execute("PRAGMA busy_timeout = 5000")
            self._db = db
            await self._migrate()
        except BaseException:
            self._db = None
            await db.close()
            raise

    async def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            await db.close()

    async def _applied(self) -> set[int]:
        rows = await self.db.execute_fetchall("SELECT version FROM schema_migrations")
        return {int(r[0]) for r in rows}

    async def _migrate(self) -> None:
        db = self.db
        await db.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
        )
        migrations = load_migrations(self.dialect)
        applied = await self._applied()
        check_schema_version(self.dialect, max(applied, default=0), migrations)
        for m in migrations:
            if m.version in applied:
                continue
            # executescript cannot bind parameters; version and name come from a validated
            # file name (digits, [a-z0-9_]). The bookkeeping row goes first so that a second
            # process racing on the same file fails on the primary key before any DDL.
            script = (
                "BEGIN IMMEDIATE;\n"
                "INSERT INTO schema_migrations (version, name, applied_at) "
                f"VALUES ({m.version}, '{m.name}', {time.time()!r});\n"
                f"{m.sql}\n;\nCOMMIT;"
            )
            try:
                await db.executescript(script)
            except sqlite3.Error as exc:
                if db.in_transaction:
                    await db.execute("ROLLBACK")
                if m.version in await self._applied():
                    continue  # applied meanwhile by another process
                raise StoreError(
                    f"sqlite migration {m.version:04d}_{m.name} failed: {exc}"
                ) from exc

    async def schema_version(self) -> int:
        return max(await self._applied(), default=0)

    async def _write(self, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
        # BEGIN/COMMIT run in aiosqlite's thread whatever happens to the awaiting task: a
        # caller cancelled mid-write (stop() cancels the flush loop) must not leave the
        # transaction open for the next write, so the write finishes regardless.
        await asyncio.shield(self._write_locked(sql, rows))

    async def _write_locked(self, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
        async with self._lock:
            db = self.db
            await db.execute("BEGIN IMMEDIATE")
            try:
                await db.executemany(sql, rows)
            except BaseException:
                await db.execute("ROLLBACK")
                raise
            await db.execute("COMMIT")

    async def upsert_bindings(self, bindings: Sequence[Binding]) -> None:
        if bindings:
            await self._write(_UPSERT, list(bindings))  # a Binding is its row

    async def delete_bindings(self, keys: Sequence[tuple[str, str]]) -> None:
        if keys:
            sql = "DELETE FROM location_bindings WHERE aor = ? AND contact = ?"
            await self._write(sql, [(aor, contact) for aor, contact in keys])

    async def load_bindings(self) -> list[Binding]:
        async with self._lock:
            rows = await self.db.execute_fetchall(
                f"SELECT {_COLUMNS} FROM location_bindings ORDER BY aor, contact"
            )
        return [Binding(*row) for row in rows]

    async def purge_expired(self, wall: float) -> int:
        async with self._lock:
            cursor = await self.db.execute(
                "DELETE FROM location_bindings WHERE expires_at <= ?", (wall,)
            )
            count = cursor.rowcount
            await cursor.close()
        return count

    async def get_meta(self, key: str) -> str | None:
        async with self._lock:
            rows = list(
                await self.db.execute_fetchall("SELECT value FROM meta WHERE key = ?", (key,))
            )
        return str(rows[0][0]) if rows else None

    async def set_meta(self, key: str, value: str) -> None:
        async with self._lock:
            await self.db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    async def write_cdr(self, cdr: Cdr) -> None:
        marks = ", ".join("?" * 11)
        await self._write(f"INSERT INTO cdr ({CDR_COLUMNS}) VALUES ({marks})", [_cdr_row(cdr)])

    async def list_cdrs(self, filters: CdrFilter | None = None, limit: int = 100,
                        offset: int = 0) -> list[Cdr]:
        where, args = cdr_where(filters or CdrFilter(), "?")
        sql = (f"SELECT {CDR_COLUMNS} FROM cdr{where} ORDER BY started_at DESC, call_id DESC"
               " LIMIT ? OFFSET ?")
        async with self._lock:
            rows = await self.db.execute_fetchall(sql, [*args, limit, offset])
        return [Cdr(*row) for row in rows]

    async def count_cdrs(self, filters: CdrFilter | None = None) -> int:
        where, args = cdr_where(filters or CdrFilter(), "?")
        async with self._lock:
            rows = await self.db.execute_fetchall(f"SELECT count(*) FROM cdr{where}", args)
        return int(list(rows)[0][0])

    async def write_survey(self, result: SurveyResult) -> None:
        await self._write(f"INSERT INTO survey_results ({SURVEY_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
                          [(result.call_id, result.queue, result.agent, result.score,
                            result.at)])

    async def list_surveys(self, *, queue: str | None = None, agent: str | None = None,
                           call_id: str | None = None, limit: int = 100) -> list[SurveyResult]:
        where, args = survey_where(queue, agent, call_id, "?")
        sql = (f"SELECT {SURVEY_COLUMNS} FROM survey_results{where}"
               " ORDER BY at DESC, call_id DESC LIMIT ?")
        async with self._lock:
            rows = await self.db.execute_fetchall(sql, [*args, limit])
        return [SurveyResult(*row) for row in rows]

    async def write_voicemail(self, message: Voicemail) -> None:
        await self._write(
            f"INSERT INTO voicemails ({VOICEMAIL_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(message.call_id, message.service, message.caller, message.path, message.sha256,
              message.seconds, message.at)])

    async def list_voicemails(self, *, service: str | None = None, caller: str | None = None,
                              call_id: str | None = None,
                              limit: int = 100) -> list[Voicemail]:
        where, args = voicemail_where(service, caller, call_id, "?")
        sql = (f"SELECT {VOICEMAIL_COLUMNS} FROM voicemails{where}"
               " ORDER BY at DESC, call_id DESC LIMIT ?")
        async with self._lock:
            rows = await self.db.execute_fetchall(sql, [*args, limit])
        return [Voicemail(*row) for row in rows]

    async def append_events(self, events: Sequence[ReportEvent]) -> None:
        if events:
            await self._write("INSERT INTO events (ts, type, payload) VALUES (?, ?, ?)",
                              [encode_event(e) for e in events])

    async def read_events(self, after_seq: int = 0, limit: int = 1000) -> list[LoggedEvent]:
        async with self._lock:
            rows = await self.db.execute_fetchall(
                "SELECT seq, ts, type, payload FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                (after_seq, limit),
            )
        return [LoggedEvent(int(r[0]), float(r[1]), str(r[2]), bytes(r[3])) for r in rows]

    async def first_event_seq(self, since_ts: float) -> int:
        async with self._lock:
            rows = list(await self.db.execute_fetchall(
                "SELECT min(seq) FROM events WHERE ts >= ?", (since_ts,)))
            if rows and rows[0][0] is not None:
                return int(rows[0][0]) - 1
            rows = list(await self.db.execute_fetchall("SELECT max(seq) FROM events"))
        return int(rows[0][0] or 0)

    # -- reports ----------------------------------------------------------------------------

    async def _transaction(self, body: Callable[[aiosqlite.Connection], Awaitable[None]]) -> None:
        async def run() -> None:
            async with self._lock:
                db = self.db
                await db.execute("BEGIN IMMEDIATE")
                try:
                    await body(db)
                except BaseException:
                    await db.execute("ROLLBACK")
                    raise
                await db.execute("COMMIT")

        await asyncio.shield(run())  # as _write: a cancelled caller never leaves it open

    @staticmethod
    async def _insert_report_rows(db: aiosqlite.Connection, rows: Sequence[ReportRow]) -> None:
        for kind in ("queue", "agent"):
            mine = [r for r in rows if r.kind == kind]
            if not mine:
                continue
            await db.executemany(report_upsert_sql(kind, "?"), [report_values(r) for r in mine])
            if kind == "agent":
                await db.executemany(
                    "DELETE FROM report_agent_interval_aux WHERE agent = ? AND start_ts = ?",
                    [(r.name, r.start) for r in mine])
                await db.executemany(
                    "INSERT INTO report_agent_interval_aux (agent, start_ts, day, reason, seconds)"
                    " VALUES (?, ?, ?, ?, ?)",
                    [(r.name, r.start, r.day, reason, seconds)
                     for r in mine for reason, seconds in r.aux.items()])

    @staticmethod
    async def _rollup(db: aiosqlite.Connection, days: Sequence[str]) -> None:
        days = sorted(set(days))
        for i in range(0, len(days), 500):
            chunk = days[i:i + 500]
            where = f"day IN ({', '.join('?' * len(chunk))})"
            for kind in ("queue", "agent"):
                for sql in rollup_sql(kind, where, "sqlite"):
                    await db.execute(sql, chunk)

    async def write_report_rows(self, rows: Sequence[ReportRow]) -> None:
        if not rows:
            return

        async def body(db: aiosqlite.Connection) -> None:
            await self._insert_report_rows(db, rows)
            await self._rollup(db, [r.day for r in rows])

        await self._transaction(body)

    async def replace_report_rows(self, first_day: str, last_day: str,
                                  rows: Sequence[ReportRow]) -> None:
        async def body(db: aiosqlite.Connection) -> None:
            for table in ("report_queue_intervals", "report_agent_intervals",
                          "report_agent_interval_aux", "report_queue_days",
                          "report_agent_days", "report_agent_day_aux"):
                await db.execute(f"DELETE FROM {table} WHERE day >= ? AND day <= ?",
                                 (first_day, last_day))
            await self._insert_report_rows(db, rows)
            await self._rollup(db, [r.day for r in rows])

        await self._transaction(body)

    async def read_report_rows(self, kind: str, group: str, *, start: float | None = None,
                               end: float | None = None, first_day: str | None = None,
                               last_day: str | None = None,
                               names: Sequence[str] | None = None) -> list[ReportRow]:
        sql = report_select_sql(kind, group)
        key = "start_ts" if group == "interval" else "day"
        where, args = report_where(self.dialect, kind, start, end, first_day, last_day, names)
        async with self._lock:
            records = await self.db.execute_fetchall(f"{sql}{where} ORDER BY {key}, {kind}",
                                                     args)
            aux: dict[tuple[str, Any], dict[str, float]] = {}
            if kind == "agent":
                table = ("report_agent_interval_aux" if group == "interval"
                         else "report_agent_day_aux")
                aux_rows = await self.db.execute_fetchall(
                    f"SELECT agent, {key}, reason, seconds FROM {table}{where}"
                    " ORDER BY reason", args)
                for name, k, reason, seconds in aux_rows:
                    aux.setdefault((name, k), {})[reason] = float(seconds)
        return report_rows(kind, list(records), aux)


    async def sum_report_rows(self, kind: str, source: str, period: str, *,
                              start: float | None = None, end: float | None = None,
                              first_day: str | None = None, last_day: str | None = None,
                              names: Sequence[str] | None = None,
                              combine: bool = False, after: Sequence[Any] | None = None,
                              limit: int | None = None) -> list[ReportRow]:
        keyset = report_keyset(kind, period, combine, self.dialect)
        if not keyset:
            after = None  # one row at most: nothing to page
        where, args = report_where(self.dialect, kind, start, end, first_day, last_day, names,
                                   keyset, after)
        figures = report_sum_sql(kind, source, period, combine, where, self.dialect,
                                 limit=limit)[0]
        async with self._lock:
            rows = summed_rows(kind, period, list(await self.db.execute_fetchall(figures, args)),
                               [])
            if kind == "agent" and rows:
                # Only the aux seconds of this page's rows (after `after`, up to its last).
                last = report_key(rows[-1], period, combine) if keyset else None
                where, args = report_where(self.dialect, kind, start, end, first_day, last_day,
                                           names, keyset, after, last)
                aux_sql = report_sum_sql(kind, source, period, combine, where,
                                         self.dialect)[1]
                assert aux_sql is not None
                attach_aux(period, rows, list(await self.db.execute_fetchall(aux_sql, args)))
        return rows

    async def last_report_interval(self) -> float | None:
        async with self._lock:
            rows = list(await self.db.execute_fetchall(
                "SELECT max(m) FROM (SELECT max(start_ts) AS m FROM report_queue_intervals"
                " UNION ALL SELECT max(start_ts) FROM report_agent_intervals)"))
        return None if rows[0][0] is None else float(rows[0][0])


def _cdr_row(c: Cdr) -> tuple[Any, ...]:
    return (c.call_id, c.caller, c.callee, c.started_at, c.answered_at, c.ended_at, c.duration,
            c.billable, c.disposition, c.hangup_cause, c.hangup_side)
