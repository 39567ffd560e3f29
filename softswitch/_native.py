"""Optional mypyc build of the SIP hot path, and the guard that keeps it honest.

The modules in `COMPILED` are plain Python and always work as such. `make` (run, test)
also compiles them with mypyc into extension modules beside the sources
(``python -m softswitch._native build``), which cuts the CPU of an authenticated
registration by about a third. Python imports an extension module in preference to the
``.py`` of the same name, so an extension built from older sources would silently run old
code: the build records the SHA-256 of every source it compiled, and `install` (called by
``softswitch/__init__.py`` before any of these modules is imported) makes Python load the
sources instead whenever a recorded hash no longer matches, an extension is missing, or
``SOFTSWITCH_PURE=1`` is set. It is all or nothing: compiled modules call each other
directly, so a mix of compiled and edited modules is never loaded.

Standard library only at import time; the build imports setuptools and mypyc itself.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

__all__ = ["COMPILED", "active", "install"]

PACKAGE_DIR = Path(__file__).resolve().parent
ROOT = PACKAGE_DIR.parent
# Compiled together, in one group (one shared library: calls between them are native).
# events.py stays Python: its dataclasses name transaction types only under TYPE_CHECKING.
COMPILED = (
    "softswitch.sip.errors",
    "softswitch.sip.uri",
    "softswitch.sip.message",
    "softswitch.sip.validate",
    "softswitch.sip.digest",
    "softswitch.sip.timers",
    "softswitch.sip.transaction",
    "softswitch.directory",
    "softswitch.location",
    "softswitch.registrar",
    "softswitch.core",
)
GROUP = "softswitch.native"
SHARED = GROUP + "__mypyc"  # the group's shared library: softswitch/native__mypyc.*.so
MANIFEST = PACKAGE_DIR / "_native.json"

_active = False


def _source(name: str) -> Path:
    return ROOT.joinpath(*name.split(".")).with_suffix(".py")


def _extension(name: str) -> Path | None:
    base = ROOT.joinpath(*name.split("."))
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = base.with_name(base.name + suffix)
        if path.exists():
            return path
    return None


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _fresh() -> bool:
    """True when every compiled module exists and was built from the sources on disk."""
    try:
        recorded = json.loads(MANIFEST.read_text())
    except (OSError, ValueError):
        return False
    if recorded.get("python") != sys.implementation.cache_tag:
        return False
    hashes = recorded.get("sources", {})
    if any(_extension(name) is None for name in (*COMPILED, SHARED)):
        return False
    try:
        return all(hashes.get(name) == _digest(_source(name)) for name in COMPILED)
    except OSError:
        return False


class _SourcesFirst:
    """A meta path finder that loads the `COMPILED` modules from their ``.py`` files."""

    @staticmethod
    def find_spec(name: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        if name not in COMPILED:
            return None
        return importlib.util.spec_from_file_location(name, _source(name))


def install() -> bool:
    """Choose compiled or source modules for this process; True when compiled are used."""
    global _active
    if any(m in sys.modules for m in COMPILED):
        return _active  # already decided (or imported before the guard: leave it be)
    use = os.environ.get("SOFTSWITCH_PURE", "") in ("", "0") and _fresh()
    if not use and not any(isinstance(f, _SourcesFirst) for f in sys.meta_path):
        sys.meta_path.insert(0, _SourcesFirst())
    _active = use
    return use


def active() -> bool:
    """Whether this process runs the compiled modules."""
    return _active


# -- build (python -m softswitch._native build | clean) ------------------------------------


def clean() -> None:
    MANIFEST.unlink(missing_ok=True)
    for name in (*COMPILED, SHARED):
        while (ext := _extension(name)) is not None:
            ext.unlink()


def _ensure_compiler() -> None:
    """As root on Debian (CI), install a C compiler and Python's headers when missing."""
    import shutil
    import subprocess
    import sysconfig

    headers = Path(sysconfig.get_paths()["include"], "Python.h")
    if (headers.exists() and shutil.which("cc")) or os.geteuid() != 0 \
            or not shutil.which("apt-get"):
        return
    dev = f"python{sys.version_info.major}.{sys.version_info.minor}-dev"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "gcc", dev]
    if subprocess.run(install, check=False, stdout=subprocess.DEVNULL, env=env).returncode:
        # A fresh container may have no package lists yet.
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
        subprocess.run(install, check=False, stdout=subprocess.DEVNULL, env=env)


def build() -> int:
    """Compile `COMPILED` in place; on any failure leave the pure-Python modules in charge."""
    try:
        from mypyc.build import mypycify
        from setuptools import Distribution
    except ImportError as exc:
        print(f"softswitch native build skipped ({exc}); running pure Python", file=sys.stderr)
        clean()
        return 0
    clean()
    _ensure_compiler()
    os.chdir(ROOT)
    sources = [str(_source(name).relative_to(ROOT)) for name in COMPILED]
    hashes = {name: _digest(_source(name)) for name in COMPILED}
    try:
        # Errors in modules these import but which are not compiled (work in progress
        # elsewhere in the tree) must not cost the build: mypy reads them silently.
        extensions = mypycify(["--follow-imports=silent", *sources], opt_level="3",
                              group_name=GROUP, target_dir="build/native")
        dist = Distribution({"name": "softswitch-native", "ext_modules": extensions,
                             "script_args": ["build_ext", "--inplace", "-q",
                                             "--build-temp", "build/native/temp"]})
        dist.parse_command_line()
        dist.run_commands()
    except (Exception, SystemExit) as exc:  # a compiler or type error: stay pure
        print(f"softswitch native build failed ({exc}); running pure Python", file=sys.stderr)
        clean()
        return 0
    # Sources edited while the build ran would not match their hashes: stale, by design.
    MANIFEST.write_text(json.dumps({"python": sys.implementation.cache_tag,
                                    "sources": hashes}, indent=1) + "\n")
    print(f"softswitch native build: {len(COMPILED)} modules compiled with mypyc",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "build"
    if command == "clean":
        clean()
        sys.exit(0)
    sys.exit(build() if command == "build" else 2)
