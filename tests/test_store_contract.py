"""One contract for every Store backend (run against SQLite and PostgreSQL by the fixtures)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from reporting.aggregate import AGENT_COUNTS, QUEUE_COUNTS
from reporting.events import AgentStateChanged, CallQueued, ReportEvent
from softswitch.store import (
    Binding,
    PostgresStore,
    SqliteStore,
    Store,
    StoreError,
    open_store,
)
from softswitch.store.base import (
    Cdr,
    CdrFilter,
    LoggedEvent,
    ReportRow,
    SurveyResult,
    Voicemail,
    load_migrations,
)

WALL = 1_700_000_000.0


def binding(
    n: int, *, aor: str | None = None, expires_at: float = WALL + 3600, **kw: object
) -> Binding:
    fields: dict[str, object] = dict(
        aor=aor or f"sip:{1000 + n % 50}@example.com",
        contact=f"<sip:{1000 + n % 50}@198.51.100.{n % 250}:{5060 + n};transport=udp>;ob",
        expires_at=expires_at,
        q=0.7 if n % 2 else None,
        call_id=f"call-{n}@host",
        cseq=n + 1,
        received=f"udp:203.0.113.{n % 250}:{40000 + n}" if n % 3 else None,
        user_agent=f"Phone/{n} ünïcode",
        instance_id=f'"<urn:uuid:00000000-0000-0000-0000-{n:012d}>"' if n % 4 == 0 else None,
        reg_id=n % 4 or None,
    )
    fields.update(kw)
    return Binding(**fields)  # type: ignore[arg-type]


def by_key(bindings: list[Binding]) -> dict[tuple[str, str], Binding]:
    return {b.key: b for b in bindings}


async def test_migrations_applied_and_idempotent(store: Store, store_url: str) -> None:
    latest = load_migrations(store.dialect)[-1].version
    assert latest >= 1
    assert await store.schema_version() == latest
    await store.upsert_bindings([binding(1)])
    # A second open of an up-to-date database applies nothing and keeps the data.
    again = open_store(store_url)
    await again.open()
    try:
        assert await again.schema_version() == latest
        assert await again.load_bindings() == [binding(1)]
    finally:
        await again.close()


async def test_schema_migrations_records_each_version(store: Store) -> None:
    # Read the bookkeeping table directly: versions and names as shipped, one row each.
    expected = [(m.version, m.name) for m in load_migrations(store.dialect)]
    if isinstance(store, SqliteStore):
        rows = await store.db.execute_fetchall(
            "SELECT version, name, applied_at FROM schema_migrations ORDER BY version"
        )
        assert [(r[0], r[1]) for r in rows] == expected
        assert all(abs(r[2] - time.time()) < 600 for r in rows)
    else:
        assert isinstance(store, PostgresStore)
        rows = await store.pool.fetch(
            "SELECT version, name, applied_at FROM schema_migrations ORDER BY version"
        )
        assert [(r[0], r[1]) for r in rows] == expected


async def test_empty_store_loads_nothing(store: Store) -> None:
    assert await store.load_bindings() == []
    assert await store.purge_expired(WALL) == 0
    await store.upsert_bindings([])
    await store.delete_bindings([])
    assert await store.load_bindings() == []


async def test_upsert_inserts_and_round_trips_every_field(store: Store) -> None:
    rows = [binding(n) for n in range(12)]
    await store.upsert_bindings(rows)
    loaded = await store.load_bindings()
    assert by_key(loaded) == by_key(rows)
    # Types survive the round trip (not only equal values): floats stay floats, ints ints.
    for b in loaded:
        assert isinstance(b.expires_at, float)
        assert isinstance(b.cseq, int)
        assert b.q is None or isinstance(b.q, float)


async def test_load_orders_by_aor_then_contact(store: Store) -> None:
    if isinstance(store, PostgresStore):
        # Give the columns a linguistic collation (as an en_US database would) so that an
        # ORDER BY relying on the column collation sorts "B" after "a" and the test sees it.
        icu = await store.pool.fetchval(
            "SELECT collname FROM pg_collation WHERE collname = 'en-US-x-icu'"
        )
        if icu:
            for column in ("aor", "contact"):
                await store.pool.execute(
                    f'ALTER TABLE location_bindings ALTER COLUMN {column} TYPE text COLLATE "{icu}"'
                )
    rows = [
        binding(1, aor="sip:b@x", contact="<sip:Z@h>"),
        binding(2, aor="sip:a@x", contact="<sip:b@h>"),
        binding(3, aor="sip:B@x", contact="<sip:a@h>"),
        binding(4, aor="sip:a@x", contact="<sip:B@h>"),
    ]
    await store.upsert_bindings(rows)
    # Byte order on both backends, whatever the database collation.
    assert [b.key for b in await store.load_bindings()] == sorted(b.key for b in rows)


async def test_upsert_updates_existing_key(store: Store) -> None:
    first = binding(1)
    await store.upsert_bindings([first, binding(2)])
    refreshed = first._replace(
        expires_at=WALL + 7200.25, q=None, cseq=99, call_id="other",
        received=None, user_agent="", instance_id=None, reg_id=None,
    )  # fmt: skip
    await store.upsert_bindings([refreshed])
    loaded = by_key(await store.load_bindings())
    assert len(loaded) == 2
    assert loaded[first.key] == refreshed
    assert loaded[binding(2).key] == binding(2)


async def test_upsert_same_key_twice_in_one_batch_last_wins(store: Store) -> None:
    first = binding(1)
    second = first._replace(cseq=first.cseq + 1, expires_at=WALL + 10)
    await store.upsert_bindings([first, binding(2), second])
    loaded = by_key(await store.load_bindings())
    assert loaded[first.key] == second
    assert len(loaded) == 2


async def test_delete_removes_only_given_keys(store: Store) -> None:
    rows = [binding(n) for n in range(6)]
    await store.upsert_bindings(rows)
    # The same contact under another AOR must survive: the key is the pair.
    twin = rows[0]._replace(aor="sip:other@example.com")
    await store.upsert_bindings([twin])
    await store.delete_bindings([rows[0].key, rows[3].key, ("sip:nobody@x", "<sip:n@x>")])
    left = by_key(await store.load_bindings())
    assert set(left) == {b.key for b in rows if b not in (rows[0], rows[3])} | {twin.key}


async def test_purge_expired_counts_and_keeps_live_ones(store: Store) -> None:
    expired = [binding(n, expires_at=WALL - n) for n in range(5)]
    at_limit = binding(10, expires_at=WALL)  # expires_at == wall: gone (0 s left)
    live = [binding(n, expires_at=WALL + 0.5 + n) for n in range(20, 25)]
    await store.upsert_bindings([*expired, at_limit, *live])
    assert await store.purge_expired(WALL) == 6
    assert by_key(await store.load_bindings()) == by_key(live)
    assert await store.purge_expired(WALL) == 0


async def test_ten_thousand_bindings_in_one_batch(store: Store) -> None:
    rows = [
        binding(n, aor=f"sip:{n}@example.com", expires_at=WALL + n) for n in range(10_000)
    ]
    start = time.perf_counter()
    await store.upsert_bindings(rows)
    elapsed = time.perf_counter() - start
    # Generous bound for a shared 2-core machine; measured 0.05 s (SQLite), 0.2 s (PostgreSQL).
    assert elapsed < 5.0, f"10,000-binding upsert took {elapsed:.2f}s"
    assert len(await store.load_bindings()) == 10_000
    # Update all of them in one more batch, then purge half.
    await store.upsert_bindings([b._replace(cseq=b.cseq + 1) for b in rows])
    loaded = await store.load_bindings()
    assert all(b.cseq == n + 2 for n, b in sorted((int(b.aor[4:-12]), b) for b in loaded))
    assert await store.purge_expired(WALL + 4_999) == 5_000
    await store.delete_bindings([b.key for b in rows[5_000:7_000]])
    assert len(await store.load_bindings()) == 3_000


async def test_meta_get_set(store: Store) -> None:
    assert await store.get_meta("nonce_secret") is None
    await store.set_meta("nonce_secret", "abc")
    await store.set_meta("other", "")
    assert await store.get_meta("nonce_secret") == "abc"
    await store.set_meta("nonce_secret", "déf")
    assert await store.get_meta("nonce_secret") == "déf"
    assert await store.get_meta("other") == ""


async def test_reopen_keeps_data(store: Store, store_url: str) -> None:
    rows = [binding(n) for n in range(30)]
    await store.upsert_bindings(rows)
    await store.delete_bindings([rows[0].key])
    await store.set_meta("k", "v")
    await store.close()
    # A new Store object on the same file/schema, as after a restart.
    restarted = open_store(store_url)
    await restarted.open()
    try:
        assert by_key(await restarted.load_bindings()) == by_key(rows[1:])
        assert await restarted.get_meta("k") == "v"
    finally:
        await restarted.close()


async def test_use_before_open_is_an_error(store_url: str) -> None:
    unopened = open_store(store_url)
    with pytest.raises(StoreError):
        await unopened.load_bindings()
    await unopened.close()  # closing an unopened store is harmless


async def test_newer_schema_is_refused(store: Store, store_url: str) -> None:
    latest = await store.schema_version()
    if isinstance(store, SqliteStore):
        await store.db.execute(
            "INSERT INTO schema_migrations VALUES (?, 'from_the_future', 0)", (latest + 1,)
        )
    else:
        assert isinstance(store, PostgresStore)
        await store.pool.execute(
            "INSERT INTO schema_migrations VALUES ($1, 'from_the_future', now())", latest + 1
        )
    await store.close()
    with pytest.raises(StoreError, match="newer"):
        await open_store(store_url).open()


# URL parsing (no database needed) ------------------------------------------------------


def test_open_store_sqlite_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    relative = open_store("sqlite:///var/softswitch.db")
    assert isinstance(relative, SqliteStore)
    assert relative.path == tmp_path / "var" / "softswitch.db"
    absolute = open_store("sqlite:////srv/x/db.sqlite")
    assert isinstance(absolute, SqliteStore) and absolute.path == Path("/srv/x/db.sqlite")
    memory = open_store("sqlite://:memory:")
    assert isinstance(memory, SqliteStore) and memory.path == ":memory:"


async def test_sqlite_relative_path_creates_parent_dirs_and_uses_wal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite:///var/deep/softswitch.db")
    async with store:
        assert isinstance(store, SqliteStore)
        (mode,) = list(await store.db.execute_fetchall("PRAGMA journal_mode"))[0]
        (fk,) = list(await store.db.execute_fetchall("PRAGMA foreign_keys"))[0]
        assert (mode, fk) == ("wal", 1)
    assert (tmp_path / "var" / "deep" / "softswitch.db").is_file()


async def test_sqlite_memory_store_works() -> None:
    async with open_store("sqlite://:memory:") as store:
        await store.upsert_bindings([binding(1)])
        assert await store.load_bindings() == [binding(1)]


def test_open_store_postgres_urls() -> None:
    store = open_store("postgres://u:secret@db:5433/sw?schema=tenant_1&sslmode=disable")
    assert isinstance(store, PostgresStore)
    assert store.schema == "tenant_1"
    assert "schema" not in store._dsn and "sslmode=disable" in store._dsn
    assert "secret" not in repr(store)
    assert isinstance(open_store("postgresql://u@h/db"), PostgresStore)


@pytest.mark.parametrize(
    "url",
    [
        "mysql://u@h/db",
        "sqlite:",
        "sqlite://",
        "sqlite:///",
        "sqlite://relative.db",
        "postgresql://u@h/db?schema=Bad-Name",
        "postgresql://u@h/db?schema=a&schema=b",
    ],
)
def test_open_store_rejects_bad_urls(url: str) -> None:
    with pytest.raises(StoreError):
        open_store(url)


def cdr(n: int, **kw: object) -> Cdr:
    answered = WALL + n + 2.5 if n % 2 == 0 else None
    fields: dict[str, object] = dict(
        call_id=f"call-{n}@host", caller=f"10{n % 3:02d}", callee="1002",
        started_at=WALL + n, answered_at=answered, ended_at=WALL + n + 10.25,
        duration=10.25, billable=7.75 if answered else 0.0,
        disposition="answered" if answered else "busy",
        hangup_cause="bye" if answered else "486", hangup_side="caller",
    )
    fields.update(kw)
    return Cdr(**fields)  # type: ignore[arg-type]


async def test_cdrs_round_trip_newest_first_with_filters_and_paging(store: Store) -> None:
    assert await store.list_cdrs() == []
    rows = [cdr(n) for n in range(7)]
    for row in rows:
        await store.write_cdr(row)
    newest_first = sorted(rows, key=lambda c: -c.started_at)
    assert await store.list_cdrs() == newest_first
    assert await store.list_cdrs(limit=2, offset=1) == newest_first[1:3]
    busy = await store.list_cdrs(CdrFilter(disposition="busy"))
    assert busy == [c for c in newest_first if c.disposition == "busy"]
    assert await store.list_cdrs(CdrFilter(caller="1001", since=WALL + 3)) == [
        c for c in newest_first if c.caller == "1001" and c.started_at >= WALL + 3]
    got = (await store.list_cdrs(CdrFilter(call_id="call-4@host")))[0]
    assert isinstance(got.answered_at, float) and got.answered_at == WALL + 6.5


async def test_cdrs_by_number_either_side_and_counted(store: Store) -> None:
    rows = [cdr(n) for n in range(6)] + [cdr(9, caller="1002", callee="1007")]
    for row in rows:
        await store.write_cdr(row)
    newest_first = sorted(rows, key=lambda c: -c.started_at)
    by_1002 = await store.list_cdrs(CdrFilter(number="1002", disposition="answered"))
    assert by_1002 == [c for c in newest_first
                       if "1002" in (c.caller, c.callee) and c.disposition == "answered"]
    assert await store.list_cdrs(CdrFilter(number="1007")) == [rows[-1]]
    assert await store.count_cdrs() == 7
    assert await store.count_cdrs(CdrFilter(number="1000", until=WALL + 4)) == 2
    assert await store.count_cdrs(CdrFilter(number="4999")) == 0


async def test_survey_results_round_trip_newest_first_with_filters(store: Store) -> None:
    rows = [SurveyResult(f"call-{n}", "general" if n % 2 else "billing", f"200{n % 3}",
                         1 + n % 5, 1_700_000_000.0 + n) for n in range(6)]
    for r in rows:
        await store.write_survey(r)
    assert await store.list_surveys() == sorted(rows, key=lambda r: r.at, reverse=True)
    assert await store.list_surveys(limit=2) == [rows[5], rows[4]]
    assert await store.list_surveys(queue="general") == [rows[5], rows[3], rows[1]]
    assert await store.list_surveys(queue="general", agent="2000") == [rows[3]]
    assert await store.list_surveys(call_id="call-2") == [rows[2]]
    assert await store.list_surveys(agent="nobody") == []
    got = (await store.list_surveys(call_id="call-4"))[0]
    assert isinstance(got.score, int) and got.score == 5 and got.at == 1_700_000_004.0


async def test_voicemails_round_trip_newest_first_with_filters(store: Store) -> None:
    rows = [Voicemail(f"call-{n}", "1500" if n % 2 else "1600", f"100{n % 3}",
                      f"/var/voicemail/2026/11/29/call-{n}.wav", f"{n:064x}", 1.5 + n,
                      1_700_000_000.0 + n) for n in range(5)]
    for r in rows:
        await store.write_voicemail(r)
    assert await store.list_voicemails() == sorted(rows, key=lambda r: r.at, reverse=True)
    assert await store.list_voicemails(limit=2) == [rows[4], rows[3]]
    assert await store.list_voicemails(service="1500") == [rows[3], rows[1]]
    assert await store.list_voicemails(service="1600", caller="1000") == [rows[0]]
    assert await store.list_voicemails(call_id="call-2") == [rows[2]]
    assert await store.list_voicemails(caller="nobody") == []
    got = (await store.list_voicemails(call_id="call-4"))[0]
    assert got.seconds == 5.5 and got.at == 1_700_000_004.0 and got.sha256 == f"{4:064x}"


# -- event log (issue 5) ---------------------------------------------------------------------


def _events(n: int, start: int = 0) -> list[ReportEvent]:
    out: list[ReportEvent] = []
    for i in range(start, start + n):
        if i % 2:
            out.append(CallQueued(ts=WALL + i, call_id=f"c{i}", queue="sales",
                                  priority_class=i % 3, caller="1001 ünï", position=i))
        else:
            out.append(AgentStateChanged(ts=WALL + i + 0.25, agent="a1", state="busy",
                                         previous="idle", reason="r", call_id=f"c{i}"))
    return out


async def test_event_log_round_trips_in_order(store: Store) -> None:
    assert await store.read_events() == []
    await store.append_events([])
    first, second = _events(5), _events(4, start=5)
    await store.append_events(first)
    await store.append_events(second)
    logged = await store.read_events()
    assert [e.event() for e in logged] == first + second
    assert [e.type for e in logged] == [e.type_name for e in first + second]
    assert [e.ts for e in logged] == [e.ts for e in first + second]
    seqs = [e.seq for e in logged]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs) and seqs[0] >= 1
    assert all(isinstance(e.payload, bytes) and isinstance(e.ts, float) for e in logged)
    assert logged[0].data()["type"] == first[0].type_name


async def test_event_log_reads_after_seq_with_limit(store: Store) -> None:
    events = _events(25)
    await store.append_events(events)
    page = await store.read_events(limit=10)
    assert [e.event() for e in page] == events[:10]
    rest: list[LoggedEvent] = []
    after = page[-1].seq
    while batch := await store.read_events(after_seq=after, limit=7):
        rest.extend(batch)
        after = batch[-1].seq
    assert [e.event() for e in rest] == events[10:]
    assert await store.read_events(after_seq=after) == []


async def test_event_log_large_batch_keeps_order(store: Store) -> None:
    events = _events(3000)
    await store.append_events(events)
    logged = await store.read_events(limit=5000)
    assert [e.event() for e in logged] == events


# -- reports (CMS-5) ---------------------------------------------------------------------------

def _qrow(name: str, start: float, day: str, offered: float, max_wait: float = 0.0) -> ReportRow:
    counts = {c: 0.0 for c in QUEUE_COUNTS}
    counts.update(offered=offered, answered=offered - 1, max_wait=max_wait, talk=12.5)
    return ReportRow("queue", name, day, start, 900.0, counts)


def _arow(name: str, start: float, day: str, staffed: float, aux: dict[str, float],
          login: float | None = None, logoff: float | None = None) -> ReportRow:
    counts = {c: 0.0 for c in AGENT_COUNTS}
    counts.update(staffed=staffed, aux=sum(aux.values()), handled=1.0)
    return ReportRow("agent", name, day, start, 900.0, counts, dict(sorted(aux.items())),
                     login, logoff)


async def test_report_rows_upsert_replaces_and_rolls_up_days(store: Store) -> None:
    assert await store.last_report_interval() is None
    rows = [_qrow("sales", WALL, "2023-11-15", 3, max_wait=40.0),
            _qrow("sales", WALL + 900, "2023-11-15", 5, max_wait=25.5),
            _qrow("help", WALL + 900, "2023-11-15", 2),
            _qrow("sales", WALL + 86400, "2023-11-16", 1),
            _arow("2001", WALL, "2023-11-15", 900.0, {"lunch": 100.0, "": 5.0}, login=WALL + 3),
            _arow("2001", WALL + 900, "2023-11-15", 600.0, {"lunch": 50.0},
                  logoff=WALL + 1500)]
    await store.write_report_rows(rows)
    # Closing the same interval again (a restart) replaces the row: nothing doubles.
    await store.write_report_rows(rows[:1] + rows[4:5])
    assert await store.last_report_interval() == WALL + 86400
    got = await store.read_report_rows("queue", "interval")
    assert [(r.name, r.start) for r in got] == [
        ("sales", WALL), ("help", WALL + 900), ("sales", WALL + 900), ("sales", WALL + 86400)]
    assert got[0] == rows[0]
    agents = await store.read_report_rows("agent", "interval", names=["2001"])
    assert agents == rows[4:6]
    days = await store.read_report_rows("queue", "day", first_day="2023-11-15",
                                        last_day="2023-11-15")
    assert [(r.name, r.day, r.start, r.counts["offered"], r.counts["max_wait"],
             r.counts["talk"]) for r in days] == [
        ("help", "2023-11-15", None, 2.0, 0.0, 12.5),
        ("sales", "2023-11-15", None, 8.0, 40.0, 25.0)]
    [day] = await store.read_report_rows("agent", "day")
    assert (day.counts["staffed"], day.counts["aux"], day.counts["handled"]) == (1500, 155, 2)
    assert day.aux == {"": 5.0, "lunch": 150.0}
    assert (day.login, day.logoff) == (WALL + 3, WALL + 1500)
    window = await store.read_report_rows("queue", "interval", start=WALL + 900,
                                          end=WALL + 1800, names=["sales"])
    assert [r.counts["offered"] for r in window] == [5.0]


async def test_report_rows_replaced_by_day_range(store: Store) -> None:
    await store.write_report_rows([
        _qrow("sales", WALL, "2023-11-15", 3), _qrow("sales", WALL + 86400, "2023-11-16", 4),
        _arow("2001", WALL, "2023-11-15", 900.0, {"lunch": 100.0})])
    await store.replace_report_rows("2023-11-15", "2023-11-15",
                                    [_qrow("help", WALL + 900, "2023-11-15", 7)])
    got = await store.read_report_rows("queue", "interval")
    assert [(r.name, r.day, r.counts["offered"]) for r in got] == [
        ("help", "2023-11-15", 7.0), ("sales", "2023-11-16", 4.0)]
    assert await store.read_report_rows("agent", "interval") == []
    assert await store.read_report_rows("agent", "day") == []
    days = await store.read_report_rows("queue", "day")
    assert [(r.name, r.day, r.counts["offered"]) for r in days] == [
        ("help", "2023-11-15", 7.0), ("sales", "2023-11-16", 4.0)]


async def test_first_event_seq_finds_where_to_replay_from(store: Store) -> None:
    assert await store.first_event_seq(WALL) == 0
    events = _events(10)
    await store.append_events(events)
    logged = await store.read_events()
    after = await store.first_event_seq(WALL + 4)
    assert [e.event() for e in await store.read_events(after_seq=after)] == [
        e for e in events if e.ts >= WALL + 4]
    assert await store.first_event_seq(WALL + 1000) == logged[-1].seq


async def test_report_rows_summed_by_period_and_name(store: Store) -> None:
    await store.write_report_rows([
        _qrow("sales", WALL, "2023-11-15", 3, max_wait=40.0),
        _qrow("sales", WALL + 900, "2023-11-15", 5, max_wait=25.5),
        _qrow("help", WALL + 900, "2023-11-15", 2, max_wait=50.0),
        _qrow("sales", WALL + 86400, "2023-11-16", 1),
        _arow("2001", WALL, "2023-11-15", 900.0, {"lunch": 100.0, "": 5.0}, login=WALL + 3),
        _arow("2002", WALL + 900, "2023-11-15", 600.0, {"lunch": 50.0}, logoff=WALL + 1500)])
    by_interval = await store.sum_report_rows("queue", "interval", "interval", combine=True)
    assert [(r.name, r.start, r.day, r.interval_s, r.counts["offered"], r.counts["max_wait"])
            for r in by_interval] == [("*", WALL, "2023-11-15", 900.0, 3.0, 40.0),
                                      ("*", WALL + 900, "2023-11-15", 900.0, 7.0, 50.0),
                                      ("*", WALL + 86400, "2023-11-16", 900.0, 1.0, 0.0)]
    days = await store.sum_report_rows("queue", "interval", "day", start=WALL,
                                       end=WALL + 1800)
    assert [(r.name, r.day, r.start, r.counts["offered"], r.counts["talk"]) for r in days] == [
        ("help", "2023-11-15", None, 2.0, 12.5), ("sales", "2023-11-15", None, 8.0, 25.0)]
    [total] = await store.sum_report_rows("queue", "day", "total", names=["sales"])
    assert (total.name, total.day, total.counts["offered"], total.counts["max_wait"]) == (
        "sales", "", 9.0, 40.0)
    [team] = await store.sum_report_rows("agent", "day", "total", first_day="2023-11-15",
                                         last_day="2023-11-15", combine=True)
    assert (team.counts["staffed"], team.counts["handled"], team.aux, team.login,
            team.logoff) == (1500.0, 2.0, {"": 5.0, "lunch": 150.0}, WALL + 3, WALL + 1500)
    per_agent = await store.sum_report_rows("agent", "interval", "total")
    assert [(r.name, r.aux) for r in per_agent] == [("2001", {"": 5.0, "lunch": 100.0}),
                                                    ("2002", {"lunch": 50.0})]
    assert await store.sum_report_rows("agent", "day", "total", first_day="2030-01-01") == []
