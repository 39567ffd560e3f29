"""`softswitch reports rebuild`: every report row recomputed from the event log (CMS-5).

The logged events go through the same `ReportingService.ingest` as live, so intervals close at
the same events and the rows equal what the live service stored (docs/metrics.md, "When an
interval closes"); the rows of the chosen days are compared with the stored ones and replaced.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from reporting.service import (
    REPLAY_BATCH,
    ReportingService,
    ReportingSettings,
    day_bounds,
    local_day,
)

if TYPE_CHECKING:
    from softswitch.store.base import ReportRow, Store

__all__ = ["RebuildResult", "rebuild"]

@dataclass
class RebuildResult:
    first_day: str
    last_day: str
    events: int = 0
    rows: int = 0  # rows written
    changed: int = 0  # stored rows whose figures differ
    added: int = 0  # rows the store did not have
    removed: int = 0  # stored rows the event log does not give
    differences: list[str] = field(default_factory=list)  # a few, for the operator

    @property
    def differs(self) -> bool:
        return bool(self.changed or self.removed)


def _key(row: ReportRow) -> tuple[str, str, float]:
    return (row.kind, row.name, row.start or 0.0)


def _same(a: ReportRow, b: ReportRow) -> bool:
    if (a.day, a.interval_s, a.login, a.logoff) != (b.day, b.interval_s, b.login, b.logoff):
        return False
    if set(a.aux) != set(b.aux) or any(abs(a.aux[k] - b.aux[k]) > 1e-6 for k in a.aux):
        return False
    return all(abs(a.counts.get(k, 0.0) - b.counts.get(k, 0.0)) <= 1e-6
               for k in {*a.counts, *b.counts})


async def rebuild(store: Store, settings: ReportingSettings, first_day: str | None = None,
                  last_day: str | None = None, *, now: float | None = None,
                  write: bool = True) -> RebuildResult:
    """Recompute every interval row (and so every day rollup) of first_day..last_day (local
    days, inclusive; None: from the log's first day / up to today) from the event log, compare
    with the stored rows and (when `write`) replace them.

    The events go through the same `ReportingService.ingest` as live, so intervals close at
    the same events; the log is read from `replay_lookback_s` before first_day so that agent
    states crossing midnight are known, and intervals are closed up to ``now - grace``.
    """
    now = time.time() if now is None else now
    tz = settings.timezone
    if first_day is None:
        first = await store.read_events(limit=1)
        first_day = local_day(first[0].ts, tz) if first else local_day(now, tz)
    if last_day is None:
        last_day = local_day(now, tz)
    lo = day_bounds(first_day, tz)[0]
    hi = day_bounds(last_day, tz)[1]
    plain = ReportingSettings(**{**settings.__dict__, "thresholds": ()})
    service = ReportingService(None, plain)
    result = RebuildResult(first_day, last_day)
    rows: list[ReportRow] = []
    after = await store.first_event_seq(lo - settings.replay_lookback_s)
    while batch := await store.read_events(after_seq=after, limit=REPLAY_BATCH):
        after = batch[-1].seq
        events = []
        for logged in batch:
            if logged.ts >= hi:
                break
            try:
                events.append(logged.event())
            except ValueError:
                continue
        service.ingest(events)
        result.events += len(events)
        rows.extend(service.pending)
        service.pending.clear()
        if len(events) < len(batch):
            break
    service._close(min(hi, now - settings.close_grace_s))
    rows.extend(service.pending)
    rows = [r for r in rows if first_day <= r.day <= last_day]
    stored = {}
    for kind in ("queue", "agent"):
        for r in await store.read_report_rows(kind, "interval", first_day=first_day,
                                              last_day=last_day):
            stored[_key(r)] = r
    fresh = {_key(r): r for r in rows}
    for k, r in fresh.items():
        old = stored.get(k)
        if old is None:
            result.added += 1
        elif not _same(old, r):
            result.changed += 1
            if len(result.differences) < 10:
                result.differences.append(f"{k[0]} {k[1]} {r.day} start={k[2]:.0f}: "
                                          f"stored {old.counts} rebuilt {r.counts}")
    for k in stored.keys() - fresh.keys():
        result.removed += 1
        if len(result.differences) < 10:
            result.differences.append(f"{k[0]} {k[1]} start={k[2]:.0f}: stored, not rebuilt")
    result.rows = len(rows)
    if write:
        await store.replace_report_rows(first_day, last_day, rows)
    return result
