"""The real `softswitch` console script in subprocesses: check-config, run, status, reload,
trace, signals."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from pathlib import Path

import httpx
import pytest

from tests.switchkit import (
    DEFAULT_USERS,
    HOST,
    UdpClient,
    register,
    wait_for,
    write_config,
)

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / ".venv" / "bin" / "softswitch"
if not SCRIPT.exists():  # another virtualenv: the script next to this interpreter
    SCRIPT = Path(sys.executable).parent / "softswitch"


async def cli(*args: str, cwd: Path = ROOT, timeout: float = 20) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        str(SCRIPT), *args, cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.parametrize(
    "args", [[], ["run"], ["check-config"], ["reload"], ["status"], ["trace"]]
)
async def test_help_of_every_subcommand(args: list[str]) -> None:
    code, out, _ = await cli(*args, "--help")
    assert code == 0
    assert out.startswith("usage: softswitch")
    if args:
        assert f"softswitch {args[0]}" in out.splitlines()[0]


async def test_check_config_demo_file_ok() -> None:
    code, out, err = await cli("check-config", str(ROOT / "conf" / "softswitch.toml"))
    assert code == 0, err
    assert "OK (10 users" in out


async def test_check_config_broken_file_lists_every_error(tmp_path: Path) -> None:
    files = write_config(tmp_path)
    files.rewrite(registrar={"min_expires": "60"}, auth={"algorithms": ["SHA-1"]},
                  http={"listen": "nowhere"})
    files.users_path.write_text('[[users]]\nextension = "a b"\npassword = "x"\n')
    code, out, err = await cli("check-config", str(files.path))
    assert code == 1
    assert "invalid configuration (4 errors)" in err
    for key in ("registrar.min_expires:", "auth.algorithms[0]:", "http.listen:",
                "users.toml: users[0].extension:"):
        assert key in err, err
    code, _, err = await cli("check-config", str(tmp_path / "missing.toml"))
    assert code == 1 and "missing.toml" in err


async def test_run_status_reload_trace_signals(tmp_path: Path) -> None:
    files = write_config(tmp_path, store_url="sqlite:///var/cli.db")  # relative to the cwd
    log_path = tmp_path / "switch.log"
    with log_path.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            str(SCRIPT), "run", "--config", str(files.path), cwd=tmp_path,
            stdout=log, stderr=asyncio.subprocess.STDOUT,
        )
    client: UdpClient | None = None
    try:
        async def healthy() -> bool:
            if proc.returncode is not None:
                raise AssertionError(f"switch exited {proc.returncode}: {log_path.read_text()}")
            try:
                async with httpx.AsyncClient(timeout=1) as http:
                    r = await http.get(f"{files.http}/healthz")
            except httpx.TransportError:
                return False
            return r.status_code == 200 and r.json()["status"] == "ok"

        await wait_for(healthy, timeout=20, what="/healthz 200")
        assert (tmp_path / "var" / "cli.db").exists()
        ctl = ("--config", str(files.path))

        # status lists a registration made by the raw client.
        client = await UdpClient.open(files.sip_port)
        contact = f"sip:1001@{HOST}:{client.local_port}"
        reg = await register(client, files.sip_port, user="1001", contacts=[f"<{contact}>"],
                             expires=600)
        assert reg.final.status == 200
        code, out, err = await cli("status", *ctl)
        assert code == 0, err
        assert "users: 5, registered: 1" in out
        assert f"udp:{HOST}:{files.sip_port}" in out
        line = next(x for x in out.splitlines() if x.startswith("1001 "))
        assert contact in line and f"udp:{HOST}:{client.local_port}" in line
        code, out, _ = await cli("status", "--json", *ctl)
        body = json.loads(out)
        assert code == 0 and body["pid"] == proc.pid
        assert [r["contact"] for r in body["registrations"]] == [contact]

        # reload reports the change.
        files.write_users({**DEFAULT_USERS, "3001": "pw3001"})
        code, out, err = await cli("reload", *ctl)
        assert code == 0, err
        assert out.strip() == "reload applied: users +1 -0 ~0"
        assert (await register(client, files.sip_port, user="3001",
                               password="pw3001")).final.status == 200

        # A broken file: refused with its errors; the switch keeps running.
        good_users = files.users_path.read_text()
        files.users_path.write_text('[[users]]\nextension = "3002"\n')
        code, out, err = await cli("reload", *ctl)
        assert code == 1
        assert "reload refused" in err and "users.toml: users[0]" in err, err
        code, out, _ = await cli("status", *ctl)
        assert code == 0 and "users: 6, registered: 2" in out

        # trace add / show.
        code, out, _ = await cli("trace", "add", "1001", *ctl)
        assert code == 0 and out.strip() == "tracing: 1001"
        code, out, _ = await cli("trace", "show", *ctl)
        assert code == 0 and out.strip() == "tracing: 1001"
        await register(client, files.sip_port, user="1001", contacts=[f"<{contact}>"])
        code, out, _ = await cli("trace", "remove", "1001", *ctl)
        assert code == 0 and out.strip() == "tracing: nothing"

        # SIGHUP reloads the (repaired) file.
        files.users_path.write_text(good_users + '[[users]]\nextension = "3003"\n'
                                                  'password = "pw3003"\n')
        proc.send_signal(signal.SIGHUP)

        async def reloaded() -> bool:
            code, out, _ = await cli("status", "--json", *ctl)
            return code == 0 and json.loads(out)["reloads"]["applied"] == 2

        await wait_for(reloaded, timeout=10, what="SIGHUP reload")
        assert (await register(client, files.sip_port, user="3003",
                               password="pw3003")).final.status == 200

        # SIGTERM stops it cleanly.
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
        log_text = log_path.read_text()
        assert "softswitch ready" in log_text
        assert "reload refused" in log_text
        assert "recv udp:127.0.0.1:" in log_text  # the trace
        assert log_text.rstrip().endswith("stopped"), log_text[-500:]
        assert not (tmp_path / "var" / f"softswitch-{files.http_port}.pid").exists()
        # Gone: the CLI says it cannot reach it.
        code, _, err = await cli("status", *ctl)
        assert code != 0 and "cannot reach the switch" in err
    finally:
        if client is not None:
            await client.close()
        if proc.returncode is None:
            proc.kill()
            with contextlib.suppress(Exception):
                await proc.wait()
