"""The ``softswitch`` command: run the switch, check a config, and talk to a running switch.

``reload``, ``status`` and ``trace`` reach the running switch over its HTTP admin API, at the
``[http] listen`` address of the config file (or ``--url``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from softswitch.config import Config, ConfigError, load_config

DEFAULT_CONFIG = "conf/softswitch.toml"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="softswitch",
        description="SIP/RTP softswitch and call-centre engine.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the switch in the foreground (SIGTERM/SIGINT stop, "
                                     "SIGHUP reloads the config)")
    run.add_argument("--config", "-c", default=DEFAULT_CONFIG,
                     help=f"configuration file (default {DEFAULT_CONFIG})")

    rpt = sub.add_parser(
        "reporting", help="run the reporting service as its own process: reads the events "
                          "from NATS JetStream ([events] bus = \"nats\", durable consumer "
                          "[reporting] durable), stores intervals and day rollups, serves the "
                          "report API and web pages on [reporting] listen; SIGTERM stops it")
    rpt.add_argument("--config", "-c", default=DEFAULT_CONFIG,
                     help=f"configuration file (default {DEFAULT_CONFIG})")

    reports = sub.add_parser("reports", help="stored CMS reports: rebuild them from the "
                                              "event log")
    rsub = reports.add_subparsers(dest="reports_command", required=True, metavar="ACTION")
    reb = rsub.add_parser(
        "rebuild", help="recompute every interval and day row of the given local days from "
                        "the store's event log and replace the stored ones; prints how many "
                        "rows and how many differed from what was stored")
    reb.add_argument("--config", "-c", default=DEFAULT_CONFIG,
                     help=f"configuration file (default {DEFAULT_CONFIG})")
    reb.add_argument("--from", dest="first_day", metavar="DAY",
                     help="first local day, YYYY-MM-DD (default: the event log's first day)")
    reb.add_argument("--to", dest="last_day", metavar="DAY",
                     help="last local day, inclusive, YYYY-MM-DD (default: today)")
    reb.add_argument("--check", action="store_true",
                     help="only compare, write nothing; exit 1 when a stored row differs "
                          "from the rebuilt one or is not rebuilt at all")

    chk = sub.add_parser("check-config", help="validate a configuration file; exit 1 and list "
                                              "every error when it is invalid")
    chk.add_argument("config", nargs="?", default=DEFAULT_CONFIG)

    for name, text in (
        ("reload", "make the running switch re-read its config; a bad file is refused with its "
                   "errors and the running config stays"),
        ("status", "show uptime, listeners and registrations of the running switch"),
        ("trace", "show or change the SIP message trace (users or IP addresses) live"),
    ):
        c = sub.add_parser(name, help=text)
        c.add_argument("--config", "-c", default=DEFAULT_CONFIG,
                       help="config file, to find the switch's HTTP address")
        c.add_argument("--url", help="base URL of the switch's HTTP API (overrides --config)")
        c.add_argument("--token", help="admin token, when [http] admin_token is set")
        if name == "status":
            c.add_argument("--json", action="store_true", help="print the raw JSON")
        if name == "trace":
            c.add_argument("action", nargs="?", choices=["add", "remove", "clear", "show"],
                           default="show")
            c.add_argument("targets", nargs="*", help="extensions or IP addresses")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "run":
        return _run(args.config)
    if args.command == "check-config":
        return _check(args.config)
    if args.command == "reporting":
        return _reporting(args.config)
    if args.command == "reports":
        return _rebuild(args)
    if args.command == "reload":
        return _reload(args)
    if args.command == "status":
        return _status(args)
    if args.command == "trace":
        return _trace(args)
    return 2


def _load(config: str) -> Config | None:
    """The config, or None after printing every error (exit status 1 for the caller)."""
    try:
        return load_config(config)
    except ConfigError as exc:
        print(f"{config}: invalid configuration ({len(exc.errors)} errors)", file=sys.stderr)
        for err in exc.errors:
            print(f"  {err}", file=sys.stderr)
    except OSError as exc:
        print(f"{config}: {exc}", file=sys.stderr)
    return None


def _run(config: str) -> int:
    from softswitch.app import Switch, configure_logging

    cfg = _load(config)
    if cfg is None:
        return 1
    switch = Switch(config, cfg)
    configure_logging(cfg.log.level)
    return _serve(switch.run_forever(), "softswitch")


def _serve(main: Coroutine[Any, Any, None], name: str) -> int:
    """Run a long-lived process on uvloop when it is installed; 1 when it cannot listen."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    try:
        asyncio.run(main)
    except OSError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 1
    return 0


def _reporting(config: str) -> int:
    from reporting.standalone import StandaloneReporting
    from softswitch.app import configure_logging
    from softswitch.store import open_store

    cfg = _load(config)
    if cfg is None:
        return 1
    if cfg.events.bus != "nats":
        print(f"{config}: softswitch reporting reads the events from NATS: set [events] "
              f"bus = \"nats\"", file=sys.stderr)
        return 1
    configure_logging(cfg.log.level)
    return _serve(StandaloneReporting(cfg, open_store(cfg.store.url)).run_forever(),
                  "softswitch reporting")


def _rebuild(args: argparse.Namespace) -> int:
    from datetime import date

    from reporting.rebuild import rebuild
    from reporting.service import settings_from_config
    from softswitch.store import StoreError, open_store

    cfg = _load(args.config)
    if cfg is None:
        return 1
    for day in (args.first_day, args.last_day):
        if day is not None:
            try:
                date.fromisoformat(day)
            except ValueError:
                print(f"softswitch reports rebuild: {day!r} is not a day (YYYY-MM-DD)",
                      file=sys.stderr)
                return 2

    async def go() -> int:
        store = open_store(cfg.store.url)
        await store.open()
        try:
            result = await rebuild(store, settings_from_config(cfg), args.first_day,
                                   args.last_day, write=not args.check)
        finally:
            await store.close()
        verb = "checked" if args.check else "rebuilt"
        print(f"{verb} {result.rows} interval rows of {result.first_day}..{result.last_day} "
              f"from {result.events} logged events: {result.changed} changed, "
              f"{result.added} not stored before, {result.removed} stored but not rebuilt")
        for line in result.differences:
            print(f"  {line}")
        print("the stored reports differed from the event log" if result.differs
              else "the stored reports equal the event log")
        return 1 if args.check and result.differs else 0

    try:
        return asyncio.run(go())
    except (StoreError, OSError) as exc:
        print(f"softswitch reports rebuild: {exc}", file=sys.stderr)
        return 1


def _check(config: str) -> int:
    cfg = _load(config)
    if cfg is None:
        return 1
    print(f"{config}: OK ({len(cfg.users)} users, files: "
          f"{', '.join(str(f) for f in cfg.files)})")
    return 0


def _base_url(args: argparse.Namespace) -> str:
    if args.url:
        return args.url.rstrip("/")
    try:
        cfg = load_config(args.config)
        host, port = cfg.http.host, cfg.http.port
    except (ConfigError, OSError):
        # The file may be broken (that is what reload is about to report): read only the
        # [http] table, falling back to the default address.
        host, port = _http_from_raw(Path(args.config))
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _http_from_raw(path: Path) -> tuple[str, int]:
    import tomllib

    try:
        listen = tomllib.loads(path.read_text())["http"]["listen"]
        host, _, port = str(listen).rpartition(":")
        return host.strip("[]"), int(port)
    except Exception:
        return "127.0.0.1", 8080


def _call(args: argparse.Namespace, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    url = _base_url(args) + path
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if getattr(args, "token", None):
        req.add_header("Authorization", f"Bearer {args.token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read() or b"null")
        except ValueError:
            return exc.code, None
    except (urllib.error.URLError, OSError) as exc:
        raise SystemExit(f"softswitch: cannot reach the switch at {url}: {exc}") from None


def _reload(args: argparse.Namespace) -> int:
    status, body = _call(args, "POST", "/api/admin/reload")
    if status == 200 and body and body.get("applied"):
        changes = body.get("changes") or []
        print("reload applied" + (": " + "; ".join(changes) if changes else " (no changes)"))
        for text in body.get("warnings") or []:
            print(f"warning: {text}", file=sys.stderr)
        return 0
    if body and body.get("errors"):
        print("reload refused; the running configuration stays:", file=sys.stderr)
        for err in body["errors"]:
            print(f"  {err}", file=sys.stderr)
        return 1
    print(f"reload failed: HTTP {status} {body}", file=sys.stderr)
    return 1


def _status(args: argparse.Namespace) -> int:
    status, body = _call(args, "GET", "/api/status")
    if status != 200:
        print(f"status failed: HTTP {status} {body}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(body, indent=2))
        return 0
    up = int(body["uptime_s"])
    print(f"softswitch {body['version']} pid {body['pid']}, up {up // 3600}h"
          f"{up % 3600 // 60:02d}m{up % 60:02d}s, config {body['config']}")
    print(f"listening: {', '.join(body['listen'])}")
    print(f"users: {body['users']}, registered: {body['registered_users']}")
    regs = body["registrations"]
    if regs:
        print(f"{'USER':<12} {'EXPIRES':>7}  {'CONTACT':<48} RECEIVED")
        for r in regs:
            print(f"{r['user']:<12} {r['expires_in']:>6}s  {r['contact']:<48} {r['received']}")
    return 0


def _trace(args: argparse.Namespace) -> int:
    if args.action == "show":
        status, body = _call(args, "GET", "/api/admin/trace")
    else:
        payload: dict[str, Any] = {"clear": True} if args.action == "clear" else {
            args.action: args.targets
        }
        status, body = _call(args, "POST", "/api/admin/trace", payload)
    if status != 200:
        print(f"trace failed: HTTP {status} {body}", file=sys.stderr)
        return 1
    targets = body.get("targets") or []
    print("tracing: " + (", ".join(targets) if targets else "nothing"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
