"""Shared pieces of the benchmarks: targets under test, readiness probes, CPU accounting.

A target is started pinned to one core (``taskset``), probed until it answers, measured by
the CPU time of its whole process tree (``/proc/<pid>/stat`` utime+stime), and stopped.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.peers import KAMAILIO_CFG, free_port, kamailio_argv  # noqa: E402
from tests.peers.sipp import write_users_toml  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
SOFTSWITCH = REPO_ROOT / ".venv" / "bin" / "softswitch"


# -- CPU accounting ---------------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # comm may hold spaces and parentheses: split after the last ")".
    return raw[raw.rindex(")") + 2:].split()


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its live descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(children.get(p, []))
    return tree


def cpu_seconds(pid: int) -> float:
    """utime+stime of ``pid`` and its live descendants, in seconds."""
    total = 0
    for p in process_tree(pid):
        fields = _stat_fields(p)
        if fields is not None:
            # Fields 14 and 15 of stat(5); index 11/12 once pid and comm are cut off.
            total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


# -- readiness --------------------------------------------------------------------------------


def wait_sip_udp(port: int, timeout: float = 10.0) -> None:
    """Send OPTIONS (retransmitted every 200 ms) until anything answers on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(0.2)
        lport = s.getsockname()[1]
        msg = (f"OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\n"
               f"Via: SIP/2.0/UDP 127.0.0.1:{lport};branch=z9hG4bK-ready;rport\r\n"
               "Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=r\r\n"
               "To: <sip:probe@127.0.0.1>\r\nCall-ID: ready@127.0.0.1\r\nCSeq: 1 OPTIONS\r\n"
               "Content-Length: 0\r\n\r\n").encode()
        while time.monotonic() < deadline:
            with contextlib.suppress(ConnectionRefusedError):
                s.sendto(msg, ("127.0.0.1", port))
            try:
                s.recvfrom(65536)
                return
            except (TimeoutError, ConnectionRefusedError):
                continue
    raise TimeoutError(f"no SIP answer on 127.0.0.1:{port} within {timeout}s")


def wait_http_ok(url: str, timeout: float, proc: subprocess.Popen[bytes]) -> None:
    """Poll ``url`` until it returns 200; give up early if ``proc`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"target exited with {proc.returncode} before it was ready")
        try:
            with urllib.request.urlopen(url, timeout=1.0) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)  # a poll interval for an external process, not synchronisation
    raise TimeoutError(f"{url} not 200 within {timeout}s")


# -- targets ----------------------------------------------------------------------------------


@dataclass
class Target:
    """A running system under test."""

    name: str
    proc: subprocess.Popen[bytes]
    sip: str  # "127.0.0.1:port"
    workdir: Path
    log: Path
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, n: int = 2000) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except FileNotFoundError:
            return ""


def pinned(argv: list[str], cpu: int | None) -> list[str]:
    return ["taskset", "-c", str(cpu), *argv] if cpu is not None else argv


def _stop(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def kamailio_target(workdir: Path, cpu: int | None = 1, *, cfg: Path = KAMAILIO_CFG,
                    shm_mb: int = 256) -> Iterator[Target]:
    """benchmarks/kamailio/registrar.cfg on a free UDP port, one worker."""
    port = free_port("udp")
    log = workdir / "kamailio.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(pinned(kamailio_argv(cfg, port, workdir, shm_mb=shm_mb), cpu),
                                stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    target = Target("kamailio", proc, f"127.0.0.1:{port}", workdir, log)
    try:
        try:
            wait_sip_udp(port, 15.0)
        except (TimeoutError, RuntimeError) as exc:
            raise RuntimeError(f"{exc}\n--- {target.log} ---\n{target.log_tail()}") from exc
        yield target
    finally:
        _stop(proc)


def write_softswitch_config(workdir: Path, users: int, first: int = 100000) -> tuple[Path, int,
                                                                                     int]:
    """The bench config (CLI contract from the task) and its users include."""
    sip_port, http_port = free_port("udp"), free_port("tcp")
    write_users_toml(workdir / "users.toml", users, first)
    cfg = workdir / "softswitch.toml"
    cfg.write_text(f"""include = ["users.toml"]
[sip]
listen = ["udp:127.0.0.1:{sip_port}"]
domain = "127.0.0.1"
[auth]
# SIPp 3.6 answers only MD5 challenges (and Kamailio offers only MD5): same work on both.
algorithms = ["MD5"]
[http]
listen = "127.0.0.1:{http_port}"
[store]
url = "sqlite:///{workdir}/bench.db"
[log]
level = "warning"
""")
    return cfg, sip_port, http_port


@contextlib.contextmanager
def softswitch_target(workdir: Path, users: int, cpu: int | None = 1, *,
                      first: int = 100000, ready_timeout: float = 60.0) -> Iterator[Target]:
    """``softswitch run --config`` with ``users`` directory entries; ready on /healthz."""
    if not SOFTSWITCH.exists():
        raise FileNotFoundError(f"{SOFTSWITCH} missing (is the switch installed?)")
    cfg, sip_port, http_port = write_softswitch_config(workdir, users, first)
    log = workdir / "softswitch.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(pinned([str(SOFTSWITCH), "run", "--config", str(cfg)], cpu),
                                cwd=workdir, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    target = Target("softswitch", proc, f"127.0.0.1:{sip_port}", workdir, log,
                    {"http": f"127.0.0.1:{http_port}"})
    try:
        try:
            wait_http_ok(f"http://127.0.0.1:{http_port}/healthz", ready_timeout, proc)
        except (TimeoutError, RuntimeError) as exc:
            raise RuntimeError(f"{exc}\n--- {target.log} ---\n{target.log_tail()}") from exc
        yield target
    finally:
        _stop(proc)
