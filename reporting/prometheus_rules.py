"""Prometheus alerting rules for the `[reporting] thresholds` rules (CMS-4).

The same rules the reporting service raises on the wallboard, written for Prometheus (and so
Alertmanager) over the metrics of `reporting.prometheus`:

- ``service_level``, ``abandon_rate``, ``asa_s`` over ``window_s``: `increase()` of the
  per-queue counters, combined with the docs/metrics.md formulas (service level with the
  configured `sl_formula`; T per queue is already in the ``..._within_threshold`` counters).
  A window without calls divides 0 by 0: NaN, which no comparison matches, so it does not fire
  (as the engine: a ratio without calls raises nothing).
- ``calls_waiting``, ``longest_wait_s``, ``agents_available``: the gauges now.

``for:`` is the rule's `for_s`, the label ``severity`` its severity; summaries in English and
Indonesian. Output is YAML written by hand (no YAML library needed at run time):

    python -m reporting.prometheus_rules --config conf/softswitch.toml > conf/prometheus/alerts.yml
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["alert_rules", "rule_expr", "duration", "render_yaml", "main"]

GROUP = "softswitch-cms"
HEADER = ("# Generated from [[reporting.thresholds]] of conf/softswitch.toml by\n"
          "#   python -m reporting.prometheus_rules --config conf/softswitch.toml "
          "> conf/prometheus/alerts.yml\n"
          "# Do not edit by hand: tests/test_prometheus_rules.py checks it matches.\n")

_Q = "softswitch_queue_"

# metric -> (English noun, Indonesian noun, how a value is shown)
_WORDS: dict[str, tuple[str, str, str]] = {
    "service_level": ("Service level", "Tingkat layanan", "humanizePercentage"),
    "abandon_rate": ("Abandon rate", "Tingkat panggilan ditinggalkan", "humanizePercentage"),
    "asa_s": ("Average speed of answer", "Rata-rata waktu jawab", "humanizeDuration"),
    "calls_waiting": ("Calls waiting", "Panggilan menunggu", ""),
    "longest_wait_s": ("Longest wait", "Tunggu terlama", "humanizeDuration"),
    "agents_available": ("Available agents", "Agen tersedia", ""),
}
_OPS_EN = {"<": "below", "<=": "at or below", ">": "above", ">=": "at or above"}
_OPS_ID = {"<": "di bawah", "<=": "tidak lebih dari", ">": "di atas", ">=": "tidak kurang dari"}


def duration(seconds: float) -> str:
    """A Prometheus duration: 1800 -> "30m", 90 -> "90s", 3600 -> "1h", 1.5 -> "1500ms"."""
    if seconds <= 0:
        return "0s"
    if seconds != int(seconds):
        return f"{round(seconds * 1000)}ms"
    s = int(seconds)
    if s % 3600 == 0:
        return f"{s // 3600}h"
    if s % 60 == 0:
        return f"{s // 60}m"
    return f"{s}s"


def _selector(queues: Sequence[str]) -> str:
    if not queues:
        return ""
    # Queue names are config keys; escape what a PromQL string and a regex would misread.
    alts = "|".join(_regex_escape(q) for q in queues)
    return "{queue=~" + json.dumps(alts) + "}"


def _regex_escape(text: str) -> str:
    return "".join("\\" + c if c in r".^$*+?()[]{}|\\" else c for c in text)


def _inc(counter: str, sel: str, window: str) -> str:
    return f"sum by (queue) (increase({_Q}{counter}_total{sel}[{window}]))"


def service_level_ratio(sl_formula: str, sel: str, w: str) -> str:
    """Service level over the window `w` from the queue counters, the docs/metrics.md formula
    `sl_formula`; `sel` a label selector with its braces, or "". The alert rules and the
    Grafana dashboards both use it."""
    in_t = _inc("calls_answered_within_threshold", sel, w)
    ans = _inc("calls_answered", sel, w)
    ab = _inc("calls_abandoned", sel, w)
    if sl_formula == "default":
        return f"{in_t} / ({ans} + {ab} - {_inc('calls_short_abandoned', sel, w)})"
    if sl_formula == "ignore_abandons":
        return f"{in_t} / {ans}"
    if sl_formula == "abandons_against":
        return f"{in_t} / ({ans} + {ab})"
    if sl_formula == "abandons_in_favour":
        return (f"({in_t} + {_inc('calls_abandoned_within_threshold', sel, w)}) / "
                f"({ans} + {ab})")
    raise ValueError(f"unknown service level formula {sl_formula!r}")


def abandon_rate_ratio(sel: str, w: str) -> str:
    """Abandon rate over the window `w`, short abandons out of both sides (docs/metrics.md)."""
    short = _inc("calls_short_abandoned", sel, w)
    return (f"({_inc('calls_abandoned', sel, w)} - {short}) / "
            f"({_inc('calls_offered', sel, w)} - {short})")


def rule_expr(metric: str, op: str, value: float, *, window_s: float = 1800,
              queues: Sequence[str] = (), sl_formula: str = "default") -> str:
    """The PromQL expression that is non-empty while `metric op value` holds, per queue."""
    sel = _selector(queues)
    w = duration(window_s)
    threshold = _number(value)
    if metric == "service_level":
        return f"({service_level_ratio(sl_formula, sel, w)}) {op} {threshold}"
    if metric == "abandon_rate":
        return f"({abandon_rate_ratio(sel, w)}) {op} {threshold}"
    if metric == "asa_s":
        return (f"({_inc('answer_wait_seconds', sel, w)} / {_inc('calls_answered', sel, w)})"
                f" {op} {threshold}")
    if metric == "calls_waiting":
        return f"max by (queue) ({_Q}calls_waiting{sel}) {op} {threshold}"
    if metric == "longest_wait_s":
        return f"max by (queue) ({_Q}longest_wait_seconds{sel}) {op} {threshold}"
    if metric == "agents_available":
        inner = sel[1:-1] + "," if sel else ""
        return (f'max by (queue) ({_Q}agents{{{inner}state="available"}}) {op} {threshold}')
    raise ValueError(f"unknown threshold metric {metric!r}")


def _number(value: float) -> str:
    v = float(value)
    return str(int(v)) if v == int(v) else repr(v)


def _shown(metric: str, value: float) -> str:
    if _WORDS[metric][2] == "humanizePercentage":
        return f"{float(value) * 100:g}%"
    if _WORDS[metric][2] == "humanizeDuration":
        return f"{float(value):g}s"
    return _number(value)


def _spoken(seconds: float, units: tuple[str, str, str]) -> str:
    """30 min / 30 menit: the window in words for the summaries."""
    s = float(seconds)
    if s >= 3600 and s % 3600 == 0:
        return f"{s / 3600:g} {units[0]}"
    if s >= 60 and s % 60 == 0:
        return f"{s / 60:g} {units[1]}"
    return f"{s:g} {units[2]}"


def alert_rules(rules: Sequence[Any], *, sl_formula: str = "default") -> dict[str, Any]:
    """The rule file as a plain structure: ``{"groups": [{"name": ..., "rules": [...]}]}``."""
    out: list[dict[str, Any]] = []
    for r in rules:
        windowed = r.metric in ("service_level", "abandon_rate", "asa_s")
        en, id_, fmt = _WORDS[r.metric]
        shown = "{{ $value | " + fmt + " }}" if fmt else "{{ $value }}"
        limit = _shown(r.metric, r.value)
        over_en = f" over the last {_spoken(r.window_s, ('h', 'min', 's'))}" if windowed else ""
        over_id = (f" dalam {_spoken(r.window_s, ('jam', 'menit', 'detik'))} terakhir"
                   if windowed else "")
        item: dict[str, Any] = {
            "alert": r.name,
            "expr": rule_expr(r.metric, r.op, r.value, window_s=r.window_s, queues=r.queues,
                              sl_formula=sl_formula),
        }
        if r.for_s:
            item["for"] = duration(r.for_s)
        item["labels"] = {"severity": r.severity, "metric": r.metric}
        item["annotations"] = {
            "summary": f"Queue {{{{ $labels.queue }}}}: {en.lower()} {shown}{over_en}, "
                       f"{_OPS_EN[r.op]} {limit}",
            "summary_id": f"Antrean {{{{ $labels.queue }}}}: {id_.lower()} {shown}{over_id}, "
                          f"{_OPS_ID[r.op]} {limit}",
        }
        out.append(item)
    return {"groups": [{"name": GROUP, "rules": out}]}


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _number(value)
    # JSON strings are YAML double-quoted scalars (YAML 1.2 is a superset of JSON).
    return json.dumps(str(value), ensure_ascii=False)


def _emit(value: Any, indent: int, lines: list[str]) -> None:
    pad = " " * indent
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, dict | list):
                if not v:
                    lines.append(f"{pad}{k}: {'{}' if isinstance(v, dict) else '[]'}")
                else:
                    lines.append(f"{pad}{k}:")
                    _emit(v, indent + 2, lines)
            else:
                lines.append(f"{pad}{k}: {_scalar(v)}")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict) and item:
                sub: list[str] = []
                _emit(item, indent + 2, sub)
                sub[0] = f"{pad}- " + sub[0][indent + 2:]
                lines.extend(sub)
            else:
                lines.append(f"{pad}- {_scalar(item)}")
    else:
        lines.append(f"{pad}{_scalar(value)}")


def render_yaml(doc: dict[str, Any], header: str = HEADER) -> str:
    """Block-style YAML of nested dicts/lists of str/int/float/bool (keys are plain words)."""
    lines: list[str] = []
    _emit(doc, 0, lines)
    return header + "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m reporting.prometheus_rules",
        description="Write Prometheus alerting rules for [[reporting.thresholds]].")
    parser.add_argument("--config", default="conf/softswitch.toml", help="softswitch TOML file")
    args = parser.parse_args(argv)
    # The config model lives with the switch; only this command line needs it.
    from softswitch.config import ConfigError, load_config

    try:
        config = load_config(args.config)
    except (ConfigError, OSError) as exc:
        print(f"prometheus_rules: {exc}", file=sys.stderr)
        return 2
    rep = config.reporting
    sys.stdout.write(render_yaml(alert_rules(rep.thresholds, sl_formula=rep.sl_formula)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
