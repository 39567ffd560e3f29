"""The guard that keeps a stale mypyc build from running (softswitch/_native.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from softswitch import _native


def test_sources_first_finder_loads_py_for_compiled_modules_only() -> None:
    spec = _native._SourcesFirst.find_spec("softswitch.sip.message")
    assert spec is not None and spec.origin is not None
    assert spec.origin.endswith("softswitch/sip/message.py")
    assert _native._SourcesFirst.find_spec("softswitch.sip.dialog") is None
    assert _native._SourcesFirst.find_spec("json") is None


def _manifest(tmp_path: Path, sources: dict[str, str]) -> Path:
    path = tmp_path / "_native.json"
    path.write_text(json.dumps({"python": sys.implementation.cache_tag, "sources": sources}))
    return path


def test_not_fresh_without_manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_native, "MANIFEST", tmp_path / "missing.json")
    assert not _native._fresh()


def test_not_fresh_when_a_source_changed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hashes = {name: _native._digest(_native._source(name)) for name in _native.COMPILED}
    hashes["softswitch.sip.uri"] = "0" * 64  # as if uri.py was edited after the build
    monkeypatch.setattr(_native, "MANIFEST", _manifest(tmp_path, hashes))
    monkeypatch.setattr(_native, "_extension", lambda name: Path("/dev/null"))
    assert not _native._fresh()


def test_fresh_when_every_source_matches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hashes = {name: _native._digest(_native._source(name)) for name in _native.COMPILED}
    monkeypatch.setattr(_native, "MANIFEST", _manifest(tmp_path, hashes))
    monkeypatch.setattr(_native, "_extension", lambda name: Path("/dev/null"))
    assert _native._fresh()
    # ...but not when an extension is missing.
    monkeypatch.setattr(_native, "_extension", lambda name: None)
    assert not _native._fresh()


def test_pure_switch_loads_every_compiled_module_from_source() -> None:
    code = (
        "import importlib, softswitch._native as n\n"
        "mods = [importlib.import_module(m) for m in n.COMPILED]\n"
        "assert not n.active()\n"
        "assert all(m.__file__.endswith('.py') for m in mods), [m.__file__ for m in mods]\n"
    )
    env = {**os.environ, "SOFTSWITCH_PURE": "1"}
    root = Path(_native.__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=root)
