"""PostgreSQL store through an asyncpg pool: the production and multi-node backend.

URL: ``postgresql://user[:password]@host:port/db[?schema=NAME&...]``. The optional ``schema``
parameter is ours (removed before asyncpg sees the URL): every connection of the pool gets
``search_path = NAME``, and the schema is created when missing. Other query parameters
(``sslmode``, ...) are passed on to asyncpg.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

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

__all__ = ["PostgresStore"]

_Bounds = tuple[float | None, float | None, str | None, str | None]  # start, end, days

# Lower-case only, so the name needs no quoting in search_path or DDL.
_SCHEMA_RE = re.compile(r"[a-z_][a-z0-9_]{0,62}")

_COLUMNS = (
    "aor, contact, expires_at, q, call_id, cseq, received, user_agent, instance_id, reg_id"
)
_UPSERT = f"""
INSERT INTO location_bindings ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (aor, contact) DO UPDATE SET
    expires_at = excluded.expires_at, q = excluded.q, call_id = excluded.call_id,
    cseq = excluded.cseq, received = excluded.received, user_agent = excluded.user_agent,
    instance_id = excluded.instance_id, reg_id = excluded.reg_id
"""
_DELETE = """
DELETE FROM location_bindings AS b
USING unnest($1::text[], $2::text[]) AS k(aor, contact)
WHERE b.aor = k.aor AND b.contact = k.contact
"""


def split_schema(url: str) -> tuple[str, str | None]:
    """Remove our ``schema`` query parameter from `url`; return (asyncpg DSN, schema)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schemas = [v for k, v in query if k == "schema"]
    if len(schemas) > 1:
        raise StoreError("store url: give schema once")
    schema = schemas[0] if schemas else None
    if schema is not None and not _SCHEMA_RE.fullmatch(schema):
        raise StoreError(f"store url: schema {schema!r} must match [a-z_][a-z0-9_]*, ≤ 63 chars")
    rest = urlencode([(k, v) for k, v in query if k != "schema"])
    return urlunsplit(parts._replace(query=rest)), schema


class PostgresStore(Store):
    dialect = "postgres"

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10) -> None:
        self._dsn, self.schema = split_schema(url)
        self._min_size, self._max_size = min_size, max_size
        self._pool: asyncpg.Pool | None = None

    def __repr__(self) -> str:
        parts = urlsplit(self._dsn)
        where = f"{parts.hostname}:{parts.port or 5432}{parts.path}"  # no password in logs
        return f"PostgresStore({where!r}, schema={self.schema!r})"

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise StoreError("store is not open")
        return self._pool

    async def open(self) -> None:
        if self._pool is not None:
            return
        if self.schema is not None:
            await self._ensure_schema(self.schema)
        settings = {"search_path": self.schema} if self.schema else None
        pool = await asyncpg.create_pool(
            self._dsn,
            min_size=self._min_size,
            max_size=self._max_size,
            server_settings=settings,
        )
        self._pool = pool
        try:
            await self._migrate()
        except BaseException:
            self._pool = None
            await pool.close()
            raise

    async def _ensure_schema(self, schema: str) -> None:
        conn = await asyncpg.connect(self._dsn)
        try:
            # Check first: CREATE SCHEMA needs a privilege that a role using an existing
            # schema may not have.
            if not await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", schema):
                await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        finally:
            await conn.close()

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def _migrate(self) -> None:
        migrations = load_migrations(self.dialect)
        async with self.pool.acquire() as conn:
            # Several nodes may start at once: one migrates while the others wait here, then
            # find nothing left to do. A session lock spans the per-migration transactions.
            lock_name = f"softswitch.migrations:{self.schema or 'public'}"
            await conn.execute("SELECT pg_advisory_lock(hashtextextended($1, 0))", lock_name)
            try:
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations ("
                    " version integer PRIMARY KEY, name text NOT NULL,"
                    " applied_at timestamptz NOT NULL)"
                )
                applied = {r[0] for r in await conn.fetch("SELECT version FROM schema_migrations")}
                check_schema_version(self.dialect, max(applied, default=0), migrations)
                for m in migrations:
                    if m.version in applied:
                        continue
                    try:
                        async with conn.transaction():
                            # No arguments: the simple protocol runs several statements.
                            await conn.execute(m.sql)
                            await conn.execute(
                                "INSERT INTO schema_migrations (version, name, applied_at)"
                                " VALUES ($1, $2, to_timestamp($3))",
                                m.version, m.name, time.time(),
                            )  # fmt: skip
                    except asyncpg.PostgresError as exc:
                        raise StoreError(
                            f"postgres migration {m.version:04d}_{m.name} failed: {exc}"
                        ) from exc
            finally:
                await conn.execute("SELECT pg_advisory_unlock(hashtextextended($1, 0))", lock_name)

    async def schema_version(self) -> int:
        version = await self.pool.fetchval("SELECT max(version) FROM schema_migrations")
        return int(version or 0)

    async def upsert_bindings(self, bindings: Sequence[Binding]) -> None:
        if not bindings:
            return
        rows = list(bindings)  # a Binding is its row, fields in column order
        # asyncpg pipelines executemany (no round trip per row): 10,000 rows take ~0.2 s
        # here. INSERT ... SELECT FROM unnest(arrays) measured ~1.5x faster but needs the
        # batch deduplicated first (ON CONFLICT may not touch a row twice); here a key
        # repeated in the batch simply ends with its last row.
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.executemany(_UPSERT, rows)

    async def delete_bindings(self, keys: Sequence[tuple[str, str]]) -> None:
        if keys:
            await self.pool.execute(_DELETE, [k[0] for k in keys], [k[1] for k in keys])

    async def load_bindings(self) -> list[Binding]:
        # Byte order ("C"), as SQLite sorts: the order must not depend on the backend.
        rows = await self.pool.fetch(
            f"SELECT {_COLUMNS} FROM location_bindings"
            ' ORDER BY aor COLLATE "C", contact COLLATE "C"'
        )
        return [Binding(*row) for row in rows]

    async def purge_expired(self, wall: float) -> int:
        status = await self.pool.execute(
            "DELETE FROM location_bindings WHERE expires_at <= $1", wall
        )
        return int(status.split()[-1])  # command tag "DELETE <count>"

    async def get_meta(self, key: str) -> str | None:
        value = await self.pool.fetchval("SELECT value FROM meta WHERE key = $1", key)
        return None if value is None else str(value)

    async def set_meta(self, key: str, value: str) -> None:
        await self.pool.execute(
            "INSERT INTO meta (key, value) VALUES ($1, $2)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            key, value,
        )  # fmt: skip

    async def write_cdr(self, cdr: Cdr) -> None:
        await self.pool.execute(
            f"INSERT INTO cdr ({CDR_COLUMNS})"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            cdr.call_id, cdr.caller, cdr.callee, cdr.started_at, cdr.answered_at, cdr.ended_at,
            cdr.duration, cdr.billable, cdr.disposition, cdr.hangup_cause, cdr.hangup_side,
        )  # fmt: skip

    async def list_cdrs(self, filters: CdrFilter | None = None, limit: int = 100,
                        offset: int = 0) -> list[Cdr]:
        where, args = cdr_where(filters or CdrFilter(), "$")
        n = len(args)
        rows = await self.pool.fetch(
            f"SELECT {CDR_COLUMNS} FROM cdr{where}"
            f' ORDER BY started_at DESC, call_id COLLATE "C" DESC LIMIT ${n + 1} OFFSET ${n + 2}',
            *args, limit, offset,
        )
        return [Cdr(*row) for row in rows]

    async def count_cdrs(self, filters: CdrFilter | None = None) -> int:
        where, args = cdr_where(filters or CdrFilter(), "$")
        return int(await self.pool.fetchval(f"SELECT count(*) FROM cdr{where}", *args))

    async def write_survey(self, result: SurveyResult) -> None:
        await self.pool.execute(
            f"INSERT INTO survey_results ({SURVEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5)",
            result.call_id, result.queue, result.agent, result.score, result.at,
        )  # fmt: skip

    async def list_surveys(self, *, queue: str | None = None, agent: str | None = None,
                           call_id: str | None = None, limit: int = 100) -> list[SurveyResult]:
        where, args = survey_where(queue, agent, call_id, "$")
        rows = await self.pool.fetch(
            f"SELECT {SURVEY_COLUMNS} FROM survey_results{where}"
            f' ORDER BY at DESC, call_id COLLATE "C" DESC LIMIT ${len(args) + 1}',
            *args, limit,
        )  # fmt: skip
        return [SurveyResult(*row) for row in rows]

    async def write_voicemail(self, message: Voicemail) -> None:
        await self.pool.execute(
            f"INSERT INTO voicemails ({VOICEMAIL_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            message.call_id, message.service, message.caller, message.path, message.sha256,
            message.seconds, message.at,
        )  # fmt: skip

    async def list_voicemails(self, *, service: str | None = None, caller: str | None = None,
                              call_id: str | None = None,
                              limit: int = 100) -> list[Voicemail]:
        where, args = voicemail_where(service, caller, call_id, "$")
        rows = await self.pool.fetch(
            f"SELECT {VOICEMAIL_COLUMNS} FROM voicemails{where}"
            f' ORDER BY at DESC, call_id COLLATE "C" DESC LIMIT ${len(args) + 1}',
            *args, limit,
        )  # fmt: skip
        return [Voicemail(*row) for row in rows]

    async def append_events(self, events: Sequence[ReportEvent]) -> None:
        if not events:
            return
        rows = [encode_event(e) for e in events]
        # One statement, rows in order: bigserial hands out seq in the order of unnest.
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO events (ts, type, payload)"
                " SELECT ts, type, payload FROM unnest($1::float8[], $2::text[], $3::bytea[])"
                " WITH ORDINALITY AS r(ts, type, payload, n) ORDER BY n",
                [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows],
            )  # fmt: skip

    async def read_events(self, after_seq: int = 0, limit: int = 1000) -> list[LoggedEvent]:
        rows = await self.pool.fetch(
            "SELECT seq, ts, type, payload FROM events WHERE seq > $1 ORDER BY seq LIMIT $2",
            after_seq, limit,
        )  # fmt: skip
        return [LoggedEvent(int(r[0]), float(r[1]), str(r[2]), bytes(r[3])) for r in rows]

    async def first_event_seq(self, since_ts: float) -> int:
        seq = await self.pool.fetchval("SELECT min(seq) FROM events WHERE ts >= $1", since_ts)
        if seq is not None:
            return int(seq) - 1
        return int(await self.pool.fetchval("SELECT coalesce(max(seq), 0) FROM events"))

    # -- reports ----------------------------------------------------------------------------

    @staticmethod
    async def _insert_report_rows(conn: asyncpg.Connection, rows: Sequence[ReportRow]) -> None:
        for kind in ("queue", "agent"):
            mine = [r for r in rows if r.kind == kind]
            if not mine:
                continue
            await conn.executemany(report_upsert_sql(kind, "$"),
                                   [report_values(r) for r in mine])
            if kind == "agent":
                await conn.execute(
                    "DELETE FROM report_agent_interval_aux AS x"
                    " USING unnest($1::text[], $2::float8[]) AS k(agent, start_ts)"
                    " WHERE x.agent = k.agent AND x.start_ts = k.start_ts",
                    [r.name for r in mine], [r.start for r in mine])
                aux = [(r.name, r.start, r.day, reason, seconds)
                       for r in mine for reason, seconds in r.aux.items()]
                if aux:
                    await conn.executemany(
                        "INSERT INTO report_agent_interval_aux"
                        " (agent, start_ts, day, reason, seconds) VALUES ($1, $2, $3, $4, $5)",
                        aux)

    @staticmethod
    async def _rollup(conn: asyncpg.Connection, days: Sequence[str]) -> None:
        chosen = sorted(set(days))
        for kind in ("queue", "agent"):
            for sql in rollup_sql(kind, "day = ANY($1::text[])", "postgres"):
                await conn.execute(sql, chosen)

    async def write_report_rows(self, rows: Sequence[ReportRow]) -> None:
        if not rows:
            return
        async with self.pool.acquire() as conn, conn.transaction():
            await self._insert_report_rows(conn, rows)
            await self._rollup(conn, [r.day for r in rows])

    async def replace_report_rows(self, first_day: str, last_day: str,
                                  rows: Sequence[ReportRow]) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            for table in ("report_queue_intervals", "report_agent_intervals",
                          "report_agent_interval_aux", "report_queue_days",
                          "report_agent_days", "report_agent_day_aux"):
                await conn.execute(f"DELETE FROM {table} WHERE day >= $1 AND day <= $2",
                                   first_day, last_day)
            await self._insert_report_rows(conn, rows)
            await self._rollup(conn, [r.day for r in rows])

    async def read_report_rows(self, kind: str, group: str, *, start: float | None = None,
                               end: float | None = None, first_day: str | None = None,
                               last_day: str | None = None,
                               names: Sequence[str] | None = None) -> list[ReportRow]:
        sql = report_select_sql(kind, group)
        key = "start_ts" if group == "interval" else "day"
        where, args = report_where(self.dialect, kind, start, end, first_day, last_day, names)
        async with self.pool.acquire() as conn:
            records = await conn.fetch(
                f'{sql}{where} ORDER BY {key}, {kind} COLLATE "C"', *args)
            aux: dict[tuple[str, Any], dict[str, float]] = {}
            if kind == "agent":
                table = ("report_agent_interval_aux" if group == "interval"
                         else "report_agent_day_aux")
                for name, k, reason, seconds in await conn.fetch(
                        f"SELECT agent, {key}, reason, seconds FROM {table}{where}"
                        ' ORDER BY reason COLLATE "C"', *args):
                    aux.setdefault((name, k), {})[reason] = float(seconds)
        return report_rows(kind, records, aux)


    async def _fill_aux(self, conn: asyncpg.Connection, source: str, period: str,
                        combine: bool, bounds: _Bounds, names: Sequence[str] | None,
                        after: Sequence[Any] | None, rows: list[ReportRow]) -> None:
        """The aux seconds of agent `rows`, the page (or batch) that follows `after`."""
        keyset = report_keyset("agent", period, combine, self.dialect)
        last = report_key(rows[-1], period, combine) if keyset else None
        where, args = report_where(self.dialect, "agent", *bounds, names, keyset,
                                   after if keyset else None, last)
        aux_sql = report_sum_sql("agent", source, period, combine, where, self.dialect)[1]
        assert aux_sql is not None
        attach_aux(period, rows, await conn.fetch(aux_sql, *args))

    async def sum_report_rows(self, kind: str, source: str, period: str, *,
                              start: float | None = None, end: float | None = None,
                              first_day: str | None = None, last_day: str | None = None,
                              names: Sequence[str] | None = None,
                              combine: bool = False, after: Sequence[Any] | None = None,
                              limit: int | None = None) -> list[ReportRow]:
        bounds: _Bounds = (start, end, first_day, last_day)
        keyset = report_keyset(kind, period, combine, self.dialect)
        after = after if keyset else None
        where, args = report_where(self.dialect, kind, *bounds, names, keyset, after)
        figures = report_sum_sql(kind, source, period, combine, where, self.dialect,
                                 limit=limit)[0]
        async with self.pool.acquire() as conn:
            rows = summed_rows(kind, period, await conn.fetch(figures, *args), [])
            if kind == "agent" and rows:
                await self._fill_aux(conn, source, period, combine, bounds, names, after, rows)
        return rows

    async def stream_report_rows(self, kind: str, source: str, period: str, *,
                                 start: float | None = None, end: float | None = None,
                                 first_day: str | None = None, last_day: str | None = None,
                                 names: Sequence[str] | None = None, combine: bool = False,
                                 after: Sequence[Any] | None = None,
                                 batch: int = 2000) -> AsyncIterator[list[ReportRow]]:
        # One server-side cursor in a read-only REPEATABLE READ transaction: the export is
        # one snapshot, fetched `batch` rows at a time (a pool connection is held meanwhile).
        bounds: _Bounds = (start, end, first_day, last_day)
        keyset = report_keyset(kind, period, combine, self.dialect)
        after = after if keyset else None
        where, args = report_where(self.dialect, kind, *bounds, names, keyset, after)
        figures = report_sum_sql(kind, source, period, combine, where, self.dialect)[0]
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read",
                                                                 readonly=True):
            cursor = await conn.cursor(figures, *args)
            while True:
                rows = summed_rows(kind, period, await cursor.fetch(batch), [])
                if not rows:
                    return
                if kind == "agent":
                    await self._fill_aux(conn, source, period, combine, bounds, names, after,
                                         rows)
                if keyset:
                    after = report_key(rows[-1], period, combine)
                yield rows
                if len(rows) < batch:
                    return

    async def last_report_interval(self) -> float | None:
        value = await self.pool.fetchval(
            "SELECT max(m) FROM (SELECT max(start_ts) AS m FROM report_queue_intervals"
            " UNION ALL SELECT max(start_ts) FROM report_agent_intervals) AS t")
        return None if value is None else float(value)
