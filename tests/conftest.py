"""Shared fixtures: stores for the contract suite, and `free_port()` for network tests.

PostgreSQL is expected at ``postgresql://postgres@127.0.0.1:5432/test`` (override with the
environment variable ``SOFTSWITCH_TEST_PG``). When it cannot be reached the PostgreSQL cases
are skipped, except on CI (``CI=true``) where they fail: CI must really test it.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import pytest
import pytest_asyncio

from softswitch.store import Store, open_store

PG_URL = os.environ.get("SOFTSWITCH_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")

_pg_problem: list[str] = []  # cached once per session: "" reachable, else why not


def free_port(host: str = "127.0.0.1") -> int:
    """A port on `host` that is free for both UDP and TCP right now."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((host, 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((host, port))
                except OSError:
                    continue  # taken for UDP by someone else: try another
                return port
    raise RuntimeError(f"no port free for both UDP and TCP on {host}")


def with_query(url: str, **params: str) -> str:
    """`url` with query parameters added."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


async def _pg_connect() -> asyncpg.Connection:
    if not _pg_problem:
        try:
            conn = await asyncpg.connect(PG_URL, timeout=5)
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            _pg_problem.append(f"{type(exc).__name__}: {exc}")
        else:
            _pg_problem.append("")
            return conn
    if _pg_problem[0]:
        message = f"PostgreSQL at {PG_URL} unreachable ({_pg_problem[0]})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return await asyncpg.connect(PG_URL, timeout=5)


@pytest_asyncio.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A URL for an empty store: a SQLite file, or a fresh PostgreSQL schema dropped after."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store' / 'test.db'}"  # sqlite:////abs/path
        return
    schema = f"t_{secrets.token_hex(6)}"
    conn = await _pg_connect()
    try:
        await conn.execute(f"CREATE SCHEMA {schema}")
    finally:
        await conn.close()
    try:
        yield with_query(PG_URL, schema=schema)
    finally:
        conn = await asyncpg.connect(PG_URL, timeout=5)
        try:
            await conn.execute(f"DROP SCHEMA {schema} CASCADE")
        finally:
            await conn.close()


@pytest_asyncio.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    """An opened (migrated) store over `store_url`, closed after the test."""
    opened = open_store(store_url)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()
