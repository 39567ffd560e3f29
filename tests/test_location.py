"""LocationService on virtual time: bindings, expiry sweep, write-behind change tracking."""

from __future__ import annotations

from softswitch.location import LocationService
from softswitch.store.base import Binding

T0 = 1_700_000_000.0


def binding(
    contact: str = "sip:1001@192.0.2.1:5060",
    *,
    aor: str = "1001",
    expires_at: float = T0 + 60,
    q: float | None = None,
    cseq: int = 1,
) -> Binding:
    return Binding(
        aor=aor, contact=contact, expires_at=expires_at, q=q, call_id="cid", cseq=cseq,
        received="udp:192.0.2.1:5060", user_agent="ua", instance_id=None, reg_id=None,
    )


# -- put / remove / lookup --------------------------------------------------------------------

def test_put_then_lookup() -> None:
    loc = LocationService()
    b = binding()
    loc.put(b)
    assert loc.lookup("1001", T0) == [b]
    assert loc.bindings_of("1001") == {b.contact: b}
    assert len(loc) == 1
    assert list(loc.aors()) == ["1001"]
    assert loc.lookup("1002", T0) == []


def test_put_same_contact_replaces() -> None:
    loc = LocationService()
    loc.put(binding(expires_at=T0 + 60))
    newer = binding(expires_at=T0 + 120, cseq=2)
    loc.put(newer)
    assert loc.lookup("1001", T0) == [newer]
    assert len(loc) == 1


def test_lookup_skips_expired() -> None:
    loc = LocationService()
    live = binding("sip:a@h", expires_at=T0 + 60)
    dead = binding("sip:b@h", expires_at=T0 + 10)
    loc.put(live)
    loc.put(dead)
    assert {b.contact for b in loc.lookup("1001", T0)} == {"sip:a@h", "sip:b@h"}
    assert loc.lookup("1001", T0 + 10) == [live]  # expires_at is exclusive
    assert loc.lookup("1001", T0 + 60) == []


def test_lookup_orders_by_q_highest_first() -> None:
    loc = LocationService()
    loc.put(binding("sip:low@h", q=0.1))
    loc.put(binding("sip:none@h", q=None))  # no q: treated as 1.0
    loc.put(binding("sip:mid@h", q=0.5))
    assert [b.contact for b in loc.lookup("1001", T0)] == ["sip:none@h", "sip:mid@h", "sip:low@h"]


def test_remove() -> None:
    loc = LocationService()
    b = binding()
    loc.put(b)
    assert loc.remove("1001", "sip:other@h") is None
    assert loc.remove("1002", b.contact) is None
    assert loc.remove("1001", b.contact) == b
    assert loc.lookup("1001", T0) == []
    assert list(loc.aors()) == []  # an emptied AOR goes away
    assert loc.remove("1001", b.contact) is None


# -- sweep --------------------------------------------------------------------------------------

def test_sweep_removes_only_expired() -> None:
    loc = LocationService()
    a = binding("sip:a@h", expires_at=T0 + 10)
    b = binding("sip:b@h", expires_at=T0 + 20)
    loc.put(a)
    loc.put(b)
    assert loc.next_expiry() == T0 + 10
    assert loc.sweep(T0 + 9) == []
    assert loc.sweep(T0 + 10) == [a]
    assert loc.lookup("1001", T0) == [b]
    assert loc.sweep(T0 + 30) == [b]
    assert len(loc) == 0
    assert loc.next_expiry() is None


def test_sweep_skips_old_heap_entry_of_refreshed_binding() -> None:
    loc = LocationService()
    loc.put(binding(expires_at=T0 + 10))
    refreshed = binding(expires_at=T0 + 100, cseq=2)
    loc.put(refreshed)
    # The entry for T0+10 is still in the heap, but the binding now lives to T0+100.
    assert loc.sweep(T0 + 50) == []
    assert loc.lookup("1001", T0 + 50) == [refreshed]
    assert loc.sweep(T0 + 100) == [refreshed]
    assert len(loc) == 0


def test_sweep_after_refresh_to_an_earlier_time() -> None:
    loc = LocationService()
    loc.put(binding(expires_at=T0 + 100))
    shorter = binding(expires_at=T0 + 10, cseq=2)
    loc.put(shorter)
    assert loc.sweep(T0 + 10) == [shorter]
    assert loc.sweep(T0 + 100) == []  # the stale later entry finds nothing


def test_sweep_skips_removed_binding() -> None:
    loc = LocationService()
    b = binding(expires_at=T0 + 10)
    loc.put(b)
    loc.remove("1001", b.contact)
    assert loc.sweep(T0 + 10) == []


def test_sweep_records_deletion() -> None:
    loc = LocationService()
    b = binding(expires_at=T0 + 10)
    loc.put(b)
    loc.take_changes()
    loc.sweep(T0 + 10)
    assert loc.take_changes() == ([], [b.key])


# -- write-behind: take_changes / restore_changes -----------------------------------------------

def test_take_changes_reports_and_clears() -> None:
    loc = LocationService()
    a = binding("sip:a@h")
    b = binding("sip:b@h")
    loc.put(a)
    loc.put(b)
    loc.remove("1001", "sip:b@h")
    assert loc.has_changes()
    upserts, deletes = loc.take_changes()
    assert upserts == [a]
    assert deletes == [("1001", "sip:b@h")]
    assert not loc.has_changes()
    assert loc.take_changes() == ([], [])


def test_put_after_remove_cancels_deletion() -> None:
    loc = LocationService()
    a = binding()
    loc.put(a)
    loc.remove("1001", a.contact)
    again = binding(cseq=2)
    loc.put(again)
    assert loc.take_changes() == ([again], [])


def test_only_latest_put_is_written() -> None:
    loc = LocationService()
    loc.put(binding(cseq=1))
    latest = binding(cseq=2)
    loc.put(latest)
    assert loc.take_changes() == ([latest], [])


def test_restore_changes_retries_failed_write() -> None:
    loc = LocationService()
    a = binding("sip:a@h")
    loc.put(a)
    loc.put(binding("sip:b@h"))
    loc.remove("1001", "sip:b@h")
    upserts, deletes = loc.take_changes()
    loc.restore_changes(upserts, deletes)  # the write failed
    assert loc.has_changes()
    assert loc.take_changes() == ([a], [("1001", "sip:b@h")])


def test_restore_changes_newer_put_supersedes_failed_upsert() -> None:
    loc = LocationService()
    loc.put(binding(cseq=1))
    failed = loc.take_changes()
    newer = binding(cseq=2, expires_at=T0 + 600)
    loc.put(newer)
    loc.restore_changes(*failed)
    assert loc.take_changes() == ([newer], [])


def test_restore_changes_newer_put_already_written_supersedes() -> None:
    loc = LocationService()
    loc.put(binding(cseq=1))
    failed = loc.take_changes()
    newer = binding(cseq=2)
    loc.put(newer)
    assert loc.take_changes() == ([newer], [])  # written fine
    loc.restore_changes(*failed)
    assert loc.take_changes() == ([], [])  # the old upsert must not overwrite it


def test_restore_changes_removal_supersedes_failed_upsert() -> None:
    loc = LocationService()
    a = binding()
    loc.put(a)
    failed = loc.take_changes()
    loc.remove("1001", a.contact)
    loc.restore_changes(*failed)
    assert loc.take_changes() == ([], [a.key])


def test_restore_changes_newer_put_supersedes_failed_delete() -> None:
    loc = LocationService()
    a = binding()
    loc.put(a)
    loc.take_changes()
    loc.remove("1001", a.contact)
    failed = loc.take_changes()
    again = binding(cseq=2)
    loc.put(again)
    assert loc.take_changes() == ([again], [])  # written fine
    loc.restore_changes(*failed)
    assert loc.take_changes() == ([], [])  # the stale delete must not remove it


# -- load -------------------------------------------------------------------------------------

def test_load_ignores_expired_and_is_not_dirty() -> None:
    loc = LocationService()
    live = binding("sip:a@h", expires_at=T0 + 60)
    dead = binding("sip:b@h", expires_at=T0)
    assert loc.load([live, dead], T0) == 1
    assert loc.lookup("1001", T0) == [live]
    assert "sip:b@h" not in loc.bindings_of("1001")
    upserts, deletes = loc.take_changes()
    assert upserts == []  # loaded bindings are already in the store
    assert deletes == [dead.key]  # the expired one is purged from it
    assert loc.sweep(T0 + 60) == [live]  # loaded bindings expire like any other


def test_load_then_refresh_is_written() -> None:
    loc = LocationService()
    old = binding(expires_at=T0 + 60)
    loc.load([old], T0)
    refreshed = old._replace(expires_at=T0 + 120, cseq=2)
    loc.put(refreshed)
    assert loc.take_changes() == ([refreshed], [])
    assert loc.sweep(T0 + 60) == []


def test_expiry_heap_stays_bounded_under_rapid_refreshes() -> None:
    """A phone refreshing every second with a long Expires leaves one stale heap entry per
    refresh; the heap is rebuilt from the live bindings before it grows without bound."""
    loc = LocationService()
    for other in range(10):
        loc.put(binding(aor=f"10{other}", expires_at=T0 + 100_000))
    for i in range(20_000):
        loc.put(binding(expires_at=T0 + 3600 + i, cseq=i + 1))
        assert len(loc._expiry) <= 2 * 11 + 1024 + 1
    # the latest refresh is what counts: nothing expires at an older entry's time
    assert loc.sweep(T0 + 3600 + 19_998) == []
    assert [b.cseq for b in loc.sweep(T0 + 3600 + 19_999)] == [20_000]
    assert len(loc) == 10 and len(loc.sweep(T0 + 100_000)) == 10
