"""SIP over TLS (RFC 3261 §26.2): the switch serves OPTIONS and REGISTER on a TLS listener."""

from __future__ import annotations

import asyncio
import os
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.switchkit import (
    HOST,
    TIMEOUT,
    TcpClient,
    options,
    register,
    running_switch,
    write_config,
)

# On CI a missing openssl is a set-up bug (scripts/install-peers installs it): run and fail.
pytestmark = pytest.mark.skipif(
    shutil.which("openssl") is None and os.environ.get("CI") != "true", reason="needs openssl"
)


class TlsClient(TcpClient):
    transport_name = "TLS"

    @classmethod
    async def open(cls, port: int) -> TlsClient:  # type: ignore[override]
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # self-signed test certificate
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(HOST, port, ssl=ctx), TIMEOUT
        )
        return cls(reader, writer)


def _self_signed(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


async def test_options_and_register_over_tls(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    tls_port = free_port()
    files = write_config(tmp_path / "sw", sip={
        "tls_certificate": str(cert), "tls_private_key": str(key),
    })
    files.rewrite(sip={"listen": [f"udp:{HOST}:{files.sip_port}", f"tls:{HOST}:{tls_port}"]})
    async with running_switch(files) as switch:
        assert ("tls", HOST, tls_port) in switch.bound
        client = await TlsClient.open(tls_port)
        try:
            resp = await client.request(options(client, tls_port))
            assert resp.status == 200
            assert "REGISTER" in (resp.headers.get("Allow") or "")
            reg = await register(client, tls_port, user="1001")
            assert reg.final.status == 200, reg.final.to_bytes()
            bindings = switch.registrations()
            assert [b["received"].split(":")[0] for b in bindings] == ["tls"]
        finally:
            await client.close()
