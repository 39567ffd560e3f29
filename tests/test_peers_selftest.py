"""Self-test of the real-peer harness: pjsua2 phones, SIPp and Kamailio on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.peers import KAMAILIO, KAMAILIO_CFG, SIPP, free_port, kamailio_argv
from tests.peers.phone import Phone
from tests.peers.sipp import (
    SippProcess,
    run_sipp_async,
    users_for,
    write_users_csv,
    write_users_toml,
)

pytestmark = pytest.mark.peers

needs_kamailio = pytest.mark.skipif(not os.path.exists(KAMAILIO), reason="kamailio not installed")
needs_sipp = pytest.mark.skipif(not shutil.which(SIPP), reason="sipp not installed")


async def wait_until(cond: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll a condition that has no event of its own (a file growing) until a deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.05)


async def sip_ping(port: int, timeout: float) -> None:
    """Retransmit an OPTIONS until anything answers on 127.0.0.1:port (readiness probe)."""
    loop = asyncio.get_running_loop()
    got: asyncio.Future[bytes] = loop.create_future()

    class Probe(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            if not got.done():
                got.set_result(data)

    transport, _ = await loop.create_datagram_endpoint(
        Probe, local_addr=("127.0.0.1", 0), remote_addr=("127.0.0.1", port))
    lport = transport.get_extra_info("sockname")[1]
    msg = (f"OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\n"
           f"Via: SIP/2.0/UDP 127.0.0.1:{lport};branch=z9hG4bK-probe;rport\r\n"
           "Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=p\r\n"
           "To: <sip:probe@127.0.0.1>\r\nCall-ID: probe@127.0.0.1\r\nCSeq: 1 OPTIONS\r\n"
           "Content-Length: 0\r\n\r\n").encode()
    deadline = loop.time() + timeout
    try:
        while True:
            transport.sendto(msg)
            try:
                await asyncio.wait_for(asyncio.shield(got), 0.2)
                return
            except TimeoutError:
                if loop.time() > deadline:
                    raise TimeoutError(f"nothing answers SIP on 127.0.0.1:{port}") from None
    finally:
        transport.close()


@pytest.fixture
async def kamailio(tmp_path: Path) -> AsyncIterator[int]:
    """The benchmark's registrar config (password "pw" + user) on a free UDP port."""
    if not os.path.exists(KAMAILIO):
        pytest.skip("kamailio not installed")
    port = free_port("udp")
    log = open(tmp_path / "kamailio.log", "wb")  # noqa: SIM115 (closed below)
    proc = await asyncio.create_subprocess_exec(
        *kamailio_argv(KAMAILIO_CFG, port, tmp_path, shm_mb=64),
        stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        await sip_ping(port, timeout=10.0)
        yield port
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 5.0)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        log.close()


def tone_wav(path: Path, freq: float, seconds: float, rate: int = 16000) -> Path:
    t = np.arange(int(rate * seconds)) / rate
    sf.write(path, (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32), rate,
             subtype="PCM_16")
    return path


def band_energy_share(samples: np.ndarray, rate: int, lo: float, hi: float) -> float:
    """Share of the signal's energy (DC removed) between lo and hi Hz."""
    power = np.abs(np.fft.rfft(samples - samples.mean())) ** 2
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    return float(power[(freqs >= lo) & (freqs <= hi)].sum() / max(power.sum(), 1e-12))


# -- phones alone ---------------------------------------------------------------------------


async def test_two_phones_start_and_stop() -> None:
    async with Phone("alice") as alice, Phone("bob") as bob:
        assert alice.udp_port and bob.udp_port
        assert alice.udp_port != bob.udp_port
        # A refused command is an error reply, not a dead phone.
        with pytest.raises(Exception, match="not registered"):
            await alice.unregister(timeout=5)
        # The phone still answers after it.
        with pytest.raises(Exception, match="no call"):
            await bob.hangup(42)
    assert alice.proc is not None and alice.proc.returncode == 0
    assert bob.proc is not None and bob.proc.returncode == 0


@pytest.mark.parametrize("transport", ["tcp", "udp"])
async def test_register_to_closed_port_fails_fast(transport: str) -> None:
    port = free_port("both")
    # Timer F shortened to 2 s so UDP reports 408 instead of waiting PJSIP's 32 s.
    async with Phone("lonely", tsx_timeout_ms=2000) as phone:
        ev = await phone.register("1001", "pw1001", f"127.0.0.1:{port}",
                                  transport=transport, timeout=10)
    assert ev["event"] == "reg_failed", ev
    assert ev["code"] in (408, 503), ev


# -- phone to phone, no server ----------------------------------------------------------------


async def test_direct_call_media_dtmf_hold_hangup() -> None:
    async with Phone("alice") as alice, Phone("bob") as bob:
        call = await alice.make_call(bob.uri)
        incoming = await bob.wait_event("incoming_call")
        await bob.wait_call_state(incoming["call"], "early")
        bcall = int(incoming["call"])
        await bob.answer(bcall)
        await alice.wait_call_state(call, "confirmed")
        await bob.wait_call_state(bcall, "confirmed")

        # Media flows directly between the two phones' RTP ports.
        am = await alice.wait_event("media_active")
        bm = await bob.wait_event("media_active")
        assert am["remote_rtp"] == bm["local_rtp"]
        assert bm["remote_rtp"] == am["local_rtp"]
        assert am["local_rtp"].startswith("127.0.0.1:")
        assert am["codec"] == bm["codec"] == "PCMU"

        await alice.send_dtmf(call, "19#")
        digits = [(await bob.wait_event("dtmf", 5))["digit"] for _ in range(3)]
        assert digits == ["1", "9", "#"]

        await alice.hold(call)
        held = await bob.wait_event("media_state", 5)
        assert held["hold"] is True or held["status"] != 1
        await alice.unhold(call)
        await bob.wait_event("media_active", 5)

        await alice.hangup(call)
        await alice.wait_call_state(call, "disconnected")
        bye = await bob.wait_call_state(bcall, "disconnected")
        assert bye["code"] == 200


async def test_direct_call_refused_with_code() -> None:
    async with Phone("alice") as alice, Phone("bob") as bob:
        call = await alice.make_call(bob.uri)
        incoming = await bob.wait_event("incoming_call")
        await bob.hangup(int(incoming["call"]), code=486)
        ev = await alice.wait_call_state(call, "disconnected")
        assert ev["code"] == 486


async def test_direct_call_play_and_record(tmp_path: Path) -> None:
    wav = tone_wav(tmp_path / "tone.wav", 1000.0, 1.0)
    rec = tmp_path / "rec.wav"
    async with Phone("alice") as alice, Phone("bob", auto_answer=200) as bob:
        call = await alice.make_call(bob.uri, play=str(wav))
        incoming = await bob.wait_event("incoming_call")
        bcall = int(incoming["call"])
        await bob.wait_event("media_active")
        await bob.record(bcall, str(rec))
        await bob.wait_event("recording")
        await alice.wait_event("play_done", 10)
        # The recorder writes 16-bit PCM; after the tone (1 s) ends, wait for the jitter
        # buffer to have delivered at least 0.6 s of it to the file.
        await wait_until(lambda: rec.exists() and rec.stat().st_size > 44 + 16000 * 2 * 6 // 10,
                         5.0, "recording did not grow")
        await bob.stop_record(bcall)
        await alice.hangup(call)
        await bob.wait_call_state(bcall, "disconnected")
    # RIFF sizes are written when the recorder is destroyed (stop_record).
    data, rate = sf.read(rec)
    assert len(data) > rate // 2
    loud = data[np.abs(data) > 0.05]
    assert len(loud) > rate // 4, "recording is silent"
    # G.711 at 8 kHz keeps a 1 kHz tone recognisable: most energy sits around it (gaps in
    # delivery on a loaded machine spread some of it, hence the broad band).
    share = band_energy_share(data, rate, 900.0, 1100.0)
    assert share > 0.5, (share, len(data), float(np.abs(data).mean()))


# -- against Kamailio and SIPp ----------------------------------------------------------------


@needs_kamailio
async def test_register_against_kamailio(kamailio: int) -> None:
    registrar = f"127.0.0.1:{kamailio}"
    async with Phone("good") as good, Phone("bad") as bad:
        ok = await good.register("100001", "pw100001", registrar, expires=120)
        assert ok["event"] == "registered", ok
        assert ok["code"] == 200 and ok["expires"] > 0
        nope = await bad.register("100002", "wrong", registrar)
        assert nope["event"] == "reg_failed", nope
        assert nope["code"] in (401, 403), nope
        gone = await good.unregister()
        assert gone["event"] == "unregistered" and gone["code"] == 200, gone


@needs_kamailio
@needs_sipp
async def test_sipp_register_auth_counts(kamailio: int, tmp_path: Path) -> None:
    target = f"127.0.0.1:{kamailio}"
    good = write_users_csv(tmp_path / "good.csv", users_for(20))
    result = await run_sipp_async("register_auth", target, users_csv=good, rate=50,
                                  max_calls=60)
    assert result.ok, result.describe()
    assert result.successful == 60 and result.failed == 0
    assert result.elapsed > 0.5 and result.call_rate > 10
    assert sum(result.per_second) <= 60

    bad = write_users_csv(tmp_path / "bad.csv", [("100003", "wrong")])
    result = await run_sipp_async("register_auth", target, users_csv=bad, rate=20, max_calls=4,
                                  timeout=10)
    assert result.returncode != 0
    assert result.successful == 0 and result.failed == 4, result.describe()
    assert "401" in result.errors


@needs_sipp
async def test_phone_registers_to_sipp_uas() -> None:
    async with SippProcess("uas_register", timeout=30) as uas:
        async with Phone("uac") as phone:
            ev = await phone.register("2000", "secret", f"127.0.0.1:{uas.port}")
            assert ev["event"] == "registered" and ev["code"] == 200, ev
        result = await uas.stop()
    assert result.successful >= 1, result.describe()


def test_user_files_agree(tmp_path: Path) -> None:
    import tomllib

    csv = write_users_csv(tmp_path / "u.csv", users_for(3, first=500))
    toml = write_users_toml(tmp_path / "u.toml", 3, first=500)
    lines = csv.read_text().splitlines()
    assert lines[0] == "SEQUENTIAL"
    assert lines[1] == "500;[authentication username=500 password=pw500]"
    users = tomllib.loads(toml.read_text())["users"]
    assert users == [{"extension": str(e), "password": f"pw{e}"} for e in (500, 501, 502)]


