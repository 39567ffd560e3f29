"""Real SIP peers for system tests: pjsua2 phones, SIPp, Kamailio (all on 127.0.0.1)."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SIPP_DIR = REPO_ROOT / "tests" / "sipp"
KAMAILIO_CFG = REPO_ROOT / "benchmarks" / "kamailio" / "registrar.cfg"
SIPP = shutil.which("sipp") or "/usr/bin/sipp"
KAMAILIO = shutil.which("kamailio") or "/usr/sbin/kamailio"


def free_port(kind: str = "udp") -> int:
    """A port on 127.0.0.1 free for ``kind`` ("udp", "tcp" or "both") right now."""
    for _ in range(50):
        kinds = ("udp", "tcp") if kind == "both" else (kind,)
        first = _bind(kinds[0], 0)
        port = int(first.getsockname()[1])
        try:
            others = [_bind(k, port) for k in kinds[1:]]
        except OSError:
            first.close()
            continue
        for s in [first, *others]:
            s.close()
        return port
    raise OSError("no free port")


def _bind(kind: str, port: int) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        s.close()
        raise
    return s


def kamailio_argv(cfg: Path, port: int, rundir: Path, *, shm_mb: int = 256) -> list[str]:
    """Command line for the registrar config, in the foreground, logging to stderr."""
    return [KAMAILIO, "-f", str(cfg), "-P", str(rundir / "kamailio.pid"), "-Y", str(rundir),
            "-m", str(shm_mb), "-M", "16", "-DD", "-E",
            "-A", f"LISTEN_ADDR=udp:127.0.0.1:{port}"]
