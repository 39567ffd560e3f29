"""Grafana dashboards of the CMS metrics: wallboard, queues, agents (conf/grafana/dashboards).

The dashboards are plain Grafana JSON (schema of Grafana 10/11) generated from the config so
their colours follow the `[[reporting.thresholds]]` rules (warning orange, critical red, at
each rule's value) and their rolling service level uses the configured `sl_formula`; the
committed files are checked against this generator by tests/test_grafana.py:

    python -m reporting.grafana --config conf/softswitch.toml --out conf/grafana/dashboards

Every query names metrics of reporting/prometheus.py (docs/metrics.md); the datasource is the
provisioned one (conf/grafana/provisioning/datasources/prometheus.yml, uid `DATASOURCE_UID`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reporting.prometheus_rules import abandon_rate_ratio, service_level_ratio

__all__ = ["DATASOURCE_UID", "dashboards", "main"]

DATASOURCE_UID = "softswitch-prometheus"
DS = {"type": "prometheus", "uid": DATASOURCE_UID}
SEVERITY_COLOUR = {"warning": "orange", "critical": "red"}
Q = 'queue=~"$queue"'
A = 'agent=~"$agent"'


# -- thresholds ------------------------------------------------------------------------------

def threshold_steps(rules: Sequence[Any], metric: str) -> list[dict[str, Any]]:
    """Grafana threshold steps for `metric`: green where no rule holds, the rule's colour
    where one does. Grafana colours a value with the highest step at or below it, so a
    ``>``/``>=`` rule starts its colour at its value, and a ``<``/``<=`` rule colours from
    the bottom up to its value, where green (or a milder rule) takes over."""
    above = sorted(((float(r.value), r.severity) for r in rules
                    if r.metric == metric and r.op in (">", ">=")), key=lambda x: x[0])
    below = sorted(((float(r.value), r.severity) for r in rules
                    if r.metric == metric and r.op in ("<", "<=")), key=lambda x: x[0])
    if below:
        # the lowest bound is the strictest: its colour at the bottom, then each looser rule
        steps: list[dict[str, Any]] = [{"color": SEVERITY_COLOUR[below[0][1]], "value": None}]
        for (value, _), (_, looser) in zip(below, below[1:], strict=False):
            steps.append({"color": SEVERITY_COLOUR[looser], "value": value})
        steps.append({"color": "green", "value": below[-1][0]})
    else:
        steps = [{"color": "green", "value": None}]
    for value, severity in above:
        steps.append({"color": SEVERITY_COLOUR[severity], "value": value})
    return steps


def _window(rules: Sequence[Any], metric: str, default: int = 1800) -> int:
    windows = [int(r.window_s) for r in rules if r.metric == metric]
    return min(windows) if windows else default


def _dur(seconds: int) -> str:
    return f"{seconds // 60}m" if seconds % 60 == 0 else f"{seconds}s"


def _inc(counter: str, window: str, sel: str = Q) -> str:
    return f"sum by (queue) (increase(softswitch_queue_{counter}_total{{{sel}}}[{window}]))"


def service_level_expr(formula: str, window: str) -> str:
    """Rolling service level, the same expression as the alert rules (docs/metrics.md)."""
    return service_level_ratio(formula, "{" + Q + "}", window)


def abandon_rate_expr(window: str) -> str:
    return abandon_rate_ratio("{" + Q + "}", window)


# -- panels ----------------------------------------------------------------------------------

class _Layout:
    """Places panels left to right on Grafana's 24-column grid."""

    def __init__(self) -> None:
        self.x = self.y = self.row_h = 0
        self.next_id = 1

    def place(self, panel: dict[str, Any], w: int, h: int) -> dict[str, Any]:
        if self.x + w > 24:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        panel = {"id": self.next_id, "gridPos": {"h": h, "w": w, "x": self.x, "y": self.y},
                 **panel}
        self.next_id += 1
        self.x += w
        self.row_h = max(self.row_h, h)
        return panel


def _target(expr: str, legend: str = "", *, ref: str = "A", instant: bool = False,
            table: bool = False) -> dict[str, Any]:
    t: dict[str, Any] = {"refId": ref, "datasource": DS, "expr": expr, "editorMode": "code",
                         "legendFormat": legend or "__auto", "range": not instant,
                         "instant": instant}
    if table:
        t["format"] = "table"
    return t


def _field(unit: str, steps: list[dict[str, Any]] | None = None, *, decimals: int | None = None,
           minimum: float | None = None, maximum: float | None = None) -> dict[str, Any]:
    d: dict[str, Any] = {"unit": unit, "mappings": [],
                         "thresholds": {"mode": "absolute",
                                        "steps": steps or [{"color": "green", "value": None}]},
                         "color": {"mode": "thresholds" if steps else "palette-classic"}}
    if decimals is not None:
        d["decimals"] = decimals
    if minimum is not None:
        d["min"] = minimum
    if maximum is not None:
        d["max"] = maximum
    return d


def stat(title: str, targets: list[dict[str, Any]], unit: str = "none",
         steps: list[dict[str, Any]] | None = None, *, description: str = "",
         decimals: int | None = None) -> dict[str, Any]:
    return {
        "type": "stat", "title": title, "description": description, "datasource": DS,
        "targets": targets,
        "fieldConfig": {"defaults": _field(unit, steps, decimals=decimals), "overrides": []},
        "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                    "orientation": "auto", "textMode": "value_and_name",
                    "colorMode": "background", "graphMode": "none", "justifyMode": "auto",
                    "wideLayout": True, "showPercentChange": False},
    }


def timeseries(title: str, targets: list[dict[str, Any]], unit: str = "none",
               steps: list[dict[str, Any]] | None = None, *, description: str = "",
               stack: bool = False, minimum: float | None = 0,
               maximum: float | None = None) -> dict[str, Any]:
    defaults = _field(unit, steps, minimum=minimum, maximum=maximum)
    defaults["color"] = {"mode": "palette-classic"}
    defaults["custom"] = {
        "drawStyle": "line", "lineWidth": 2, "fillOpacity": 20 if stack else 5,
        "showPoints": "never", "spanNulls": False,
        "stacking": {"mode": "normal" if stack else "none", "group": "A"},
        # thresholds drawn as dashed lines: the rules' limits on the graph
        "thresholdsStyle": {"mode": "dashed" if steps else "off"},
    }
    return {
        "type": "timeseries", "title": title, "description": description, "datasource": DS,
        "targets": targets, "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                    "tooltip": {"mode": "multi", "sort": "desc"}},
    }


def table(title: str, targets: list[dict[str, Any]], *, hide: Sequence[str] = (),
          rename: dict[str, str] | None = None, description: str = "",
          overrides: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    exclude = {name: True for name in ("Time", "__name__", "job", "instance", *hide)}
    return {
        "type": "table", "title": title, "description": description, "datasource": DS,
        "targets": targets,
        "fieldConfig": {"defaults": {"custom": {"align": "auto", "cellOptions": {"type": "auto"}},
                                     "mappings": [], "thresholds": {"mode": "absolute", "steps": [
                                         {"color": "green", "value": None}]}},
                        "overrides": overrides or []},
        "options": {"showHeader": True, "cellHeight": "sm", "footer": {"show": False}},
        "transformations": [
            {"id": "merge", "options": {}},
            {"id": "organize", "options": {"excludeByName": exclude,
                                           "renameByName": rename or {}}},
        ],
    }


def _column(name: str, unit: str, steps: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    props: list[dict[str, Any]] = [{"id": "unit", "value": unit}]
    if steps:
        props += [{"id": "thresholds", "value": {"mode": "absolute", "steps": steps}},
                  {"id": "custom.cellOptions", "value": {"type": "color-background"}}]
    return {"matcher": {"id": "byName", "options": name}, "properties": props}


# -- dashboards ------------------------------------------------------------------------------

def _variable(name: str, label: str, query: str) -> dict[str, Any]:
    return {
        "name": name, "label": label, "type": "query", "datasource": DS,
        "definition": query, "query": {"query": query, "refId": f"{name}-values"},
        "refresh": 2, "includeAll": True, "multi": True, "allValue": ".*", "sort": 1,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]}, "options": [],
        "hide": 0,
    }


QUEUE_VAR = _variable("queue", "Queue", "label_values(softswitch_queue_calls_waiting, queue)")
AGENT_VAR = _variable("agent", "Agent", "label_values(softswitch_agent_state, agent)")


def _dashboard(uid: str, title: str, panels: list[dict[str, Any]],
               variables: list[dict[str, Any]], *, refresh: str, time_from: str,
               description: str) -> dict[str, Any]:
    return {
        "uid": uid, "title": title, "description": description,
        "tags": ["softswitch", "cms"], "editable": True, "graphTooltip": 1,
        "schemaVersion": 39, "version": 1, "timezone": "browser", "refresh": refresh,
        "time": {"from": time_from, "to": "now"}, "fiscalYearStartMonth": 0,
        "liveNow": False, "weekStart": "",
        "annotations": {"list": [{
            "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
            "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
            "name": "Annotations & Alerts", "type": "dashboard"}]},
        "templating": {"list": variables},
        "links": [{"type": "dashboards", "tags": ["softswitch"], "asDropdown": False,
                   "title": "Softswitch", "includeVars": True, "keepTime": True}],
        "panels": panels,
    }


def wallboard(rules: Sequence[Any], sl_formula: str) -> dict[str, Any]:
    lay = _Layout()
    sl_w = _dur(_window(rules, "service_level"))
    ab_w = _dur(_window(rules, "abandon_rate"))
    sl_steps = threshold_steps(rules, "service_level")
    panels = [
        lay.place(stat("Calls waiting", [_target(
            f"softswitch_queue_calls_waiting{{{Q}}}", "{{queue}}", instant=True)],
            steps=threshold_steps(rules, "calls_waiting"), decimals=0), 6, 5),
        lay.place(stat("Longest wait", [_target(
            f"softswitch_queue_longest_wait_seconds{{{Q}}}", "{{queue}}", instant=True)],
            "s", threshold_steps(rules, "longest_wait_s"), decimals=0), 6, 5),
        lay.place(stat("Agents available", [_target(
            f'softswitch_queue_agents{{{Q},state="available"}}', "{{queue}}", instant=True)],
            steps=threshold_steps(rules, "agents_available"), decimals=0), 6, 5),
        lay.place(stat("Agents staffed", [_target(
            f"softswitch_queue_agents_staffed{{{Q}}}", "{{queue}}", instant=True)],
            decimals=0), 6, 5),
        lay.place(stat(f"Service level (last {sl_w})", [_target(
            service_level_expr(sl_formula, sl_w), "{{queue}}", instant=True)],
            "percentunit", sl_steps, decimals=0,
            description=f"Rolling service level, formula {sl_formula}: no value while "
                        "the window has no calls"), 6, 5),
        lay.place(stat("Service level today", [_target(
            f"softswitch_queue_service_level_ratio{{{Q}}}", "{{queue}}", instant=True)],
            "percentunit", sl_steps, decimals=0,
            description="Since local midnight ([web] timezone)"), 6, 5),
        lay.place(stat(f"Abandon rate (last {ab_w})", [_target(
            abandon_rate_expr(ab_w), "{{queue}}", instant=True)],
            "percentunit", threshold_steps(rules, "abandon_rate"), decimals=1,
            description="Short abandons excluded from both sides"), 6, 5),
        lay.place(stat("Average speed of answer today", [_target(
            f"softswitch_queue_answer_speed_average_seconds{{{Q}}}", "{{queue}}",
            instant=True)], "s", threshold_steps(rules, "asa_s"), decimals=0), 6, 5),
        lay.place(stat("Calls today", [_target(
            f'softswitch_queue_calls_today{{{Q},kind=~"offered|answered|abandoned"}}',
            "{{queue}} {{kind}}", instant=True)], decimals=0), 12, 5),
        lay.place(stat("Agents by state", [_target(
            'softswitch_agents{state!="logged_out"}', "{{state}}", instant=True)],
            decimals=0), 12, 5),
        lay.place(table("Active alerts", [_target(
            f"softswitch_alerts_active{{{Q}}} == 1", instant=True, table=True)],
            hide=("Value",), rename={"rule": "Rule", "queue": "Queue", "severity": "Severity"},
            overrides=[{"matcher": {"id": "byName", "options": "Severity"}, "properties": [
                {"id": "mappings", "value": [{"type": "value", "options": {
                    "critical": {"color": "red", "index": 0},
                    "warning": {"color": "orange", "index": 1}}}]},
                {"id": "custom.cellOptions", "value": {"type": "color-background"}}]}],
            description="Threshold rules of [[reporting.thresholds]] raised now"), 24, 6),
    ]
    return _dashboard("softswitch-wallboard", "Softswitch wallboard", panels, [QUEUE_VAR],
                      refresh="5s", time_from="now-1h",
                      description="Real-time queue figures and alerts (CMS-3, CMS-4)")


def queues(rules: Sequence[Any], sl_formula: str) -> dict[str, Any]:
    lay = _Layout()
    w = "$__rate_interval"
    sl_w = _dur(_window(rules, "service_level"))
    ab_w = _dur(_window(rules, "abandon_rate"))
    asa_w = _dur(_window(rules, "asa_s"))

    def per_hour(counter: str, legend: str, ref: str) -> dict[str, Any]:
        return _target(f"sum by (queue) (rate(softswitch_queue_{counter}_total{{{Q}}}[{w}]))"
                       " * 3600", legend, ref=ref)

    panels = [
        lay.place(timeseries("Calls waiting", [_target(
            f"softswitch_queue_calls_waiting{{{Q}}}", "{{queue}}")],
            steps=threshold_steps(rules, "calls_waiting")), 12, 8),
        lay.place(timeseries("Longest wait", [_target(
            f"softswitch_queue_longest_wait_seconds{{{Q}}}", "{{queue}}")], "s",
            threshold_steps(rules, "longest_wait_s")), 12, 8),
        lay.place(timeseries(f"Service level (rolling {sl_w})", [_target(
            service_level_expr(sl_formula, sl_w), "{{queue}}")], "percentunit",
            threshold_steps(rules, "service_level"), maximum=1,
            description=f"Formula {sl_formula}; T per queue"), 12, 8),
        lay.place(timeseries(f"Abandon rate (rolling {ab_w})", [_target(
            abandon_rate_expr(ab_w), "{{queue}}")], "percentunit",
            threshold_steps(rules, "abandon_rate")), 12, 8),
        lay.place(timeseries("Calls per hour", [
            per_hour("calls_offered", "{{queue}} offered", "A"),
            per_hour("calls_answered", "{{queue}} answered", "B"),
            per_hour("calls_abandoned", "{{queue}} abandoned", "C"),
            per_hour("calls_overflowed", "{{queue}} overflowed", "D"),
            per_hour("calls_dropped", "{{queue}} dropped", "E"),
        ], "short"), 12, 8),
        lay.place(timeseries(f"Average speed of answer (rolling {asa_w})", [_target(
            f"{_inc('answer_wait_seconds', asa_w)} / {_inc('calls_answered', asa_w)}",
            "{{queue}}")], "s", threshold_steps(rules, "asa_s")), 12, 8),
        lay.place(timeseries("Average handle time (rolling 1h)", [_target(
            f"({_inc('talk_seconds', '1h')} + {_inc('acw_seconds', '1h')})"
            f" / {_inc('calls_handled', '1h')}", "{{queue}}")], "s"), 12, 8),
        lay.place(timeseries("Agents by state", [_target(
            f'softswitch_queue_agents{{{Q},state!="available"}}', "{{queue}} {{state}}",
            ref="A"), _target(f'softswitch_queue_agents{{{Q},state="available"}}',
                              "{{queue}} available", ref="B")], stack=True), 12, 8),
        lay.place(table("Today per queue", [
            _target(f'softswitch_queue_calls_today{{{Q},kind="offered"}}', ref="A",
                    instant=True, table=True),
            _target(f'softswitch_queue_calls_today{{{Q},kind="answered"}}', ref="B",
                    instant=True, table=True),
            _target(f'softswitch_queue_calls_today{{{Q},kind="abandoned"}}', ref="C",
                    instant=True, table=True),
            _target(f"softswitch_queue_service_level_ratio{{{Q}}}", ref="D", instant=True,
                    table=True),
            _target(f"softswitch_queue_abandon_ratio{{{Q}}}", ref="E", instant=True,
                    table=True),
            _target(f"softswitch_queue_answer_speed_average_seconds{{{Q}}}", ref="F",
                    instant=True, table=True),
            _target(f"softswitch_queue_handle_time_average_seconds{{{Q}}}", ref="G",
                    instant=True, table=True),
        ], hide=("kind",), rename={
            "queue": "Queue", "Value #A": "Offered", "Value #B": "Answered",
            "Value #C": "Abandoned", "Value #D": "Service level", "Value #E": "Abandon rate",
            "Value #F": "ASA", "Value #G": "AHT"},
            overrides=[_column("Service level", "percentunit",
                               threshold_steps(rules, "service_level")),
                       _column("Abandon rate", "percentunit",
                               threshold_steps(rules, "abandon_rate")),
                       _column("ASA", "s", threshold_steps(rules, "asa_s")),
                       _column("AHT", "s")],
            description="Since local midnight; blank ratios are undefined (no calls)"), 24, 8),
    ]
    return _dashboard("softswitch-queues", "Softswitch queues", panels, [QUEUE_VAR],
                      refresh="30s", time_from="now-6h",
                      description="Queue traffic, service level and handling over time (CMS-2)")


def agents(rules: Sequence[Any], sl_formula: str) -> dict[str, Any]:
    lay = _Layout()
    w = "$__rate_interval"
    busy = (f'sum by (agent) (increase(softswitch_agent_state_seconds_total{{{A},'
            f'state=~"on_call|acw"}}[1h]))')
    staffed = f"sum by (agent) (increase(softswitch_agent_staffed_seconds_total{{{A}}}[1h]))"
    aux = f'sum by (agent) (increase(softswitch_agent_state_seconds_total{{{A},state="aux"}}[1h]))'
    panels = [
        lay.place(stat("Agents by state", [_target(
            "softswitch_agents", "{{state}}", instant=True)], decimals=0), 24, 4),
        lay.place(table("Agents now", [
            _target(f"softswitch_agent_state{{{A}}} == 1", ref="A", instant=True, table=True),
            _target(f"softswitch_agent_state_duration_seconds{{{A}}}", ref="B", instant=True,
                    table=True),
            _target(f"softswitch_agent_calls_handled_today{{{A}}}", ref="C", instant=True,
                    table=True),
            _target(f"softswitch_agent_occupancy_ratio{{{A}}}", ref="D", instant=True,
                    table=True),
        ], hide=("Value #A",), rename={
            "agent": "Agent", "state": "State", "Value #B": "In state",
            "Value #C": "Handled today", "Value #D": "Occupancy today"},
            overrides=[_column("In state", "s"), _column("Occupancy today", "percentunit")]),
            24, 9),
        lay.place(timeseries("Agents by state over time", [_target(
            'softswitch_agents{state!="logged_out"}', "{{state}}")], stack=True), 12, 8),
        lay.place(timeseries("Calls handled per hour", [_target(
            f"sum by (agent) (rate(softswitch_agent_calls_handled_total{{{A}}}[{w}])) * 3600",
            "{{agent}}")], "short"), 12, 8),
        lay.place(timeseries("Occupancy (rolling 1h)", [_target(
            f"{busy} / ({staffed} - {aux})", "{{agent}}")], "percentunit", maximum=1,
            description="(talk + ACW) / (staffed − aux)"), 12, 8),
        lay.place(timeseries("Time by state", [_target(
            f"sum by (state) (rate(softswitch_agent_state_seconds_total{{{A}}}[{w}]))",
            "{{state}}")], "short", stack=True,
            description="Agents in each state on average (seconds per second)"), 12, 8),
        lay.place(timeseries("Offers rung out (ring-no-answer) per hour", [_target(
            f"sum by (agent) (increase(softswitch_agent_offers_unanswered_total{{{A}}}[1h]))",
            "{{agent}}")], "short"), 12, 8),
        lay.place(timeseries("Offers per hour", [_target(
            f"sum by (agent) (rate(softswitch_agent_calls_offered_total{{{A}}}[{w}])) * 3600",
            "{{agent}}")], "short"), 12, 8),
    ]
    return _dashboard("softswitch-agents", "Softswitch agents", panels, [AGENT_VAR],
                      refresh="10s", time_from="now-6h",
                      description="Agent states, occupancy and calls (CMS-1)")


def dashboards(rules: Sequence[Any], sl_formula: str = "default") -> dict[str, dict[str, Any]]:
    """File name -> dashboard JSON of conf/grafana/dashboards."""
    return {"wallboard.json": wallboard(rules, sl_formula),
            "queues.json": queues(rules, sl_formula),
            "agents.json": agents(rules, sl_formula)}


def render(dashboard: dict[str, Any]) -> str:
    return json.dumps(dashboard, indent=2, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reporting.grafana",
                                     description="Write the Grafana dashboards of the CMS.")
    parser.add_argument("--config", default="conf/softswitch.toml", help="softswitch TOML file")
    parser.add_argument("--out", default="conf/grafana/dashboards", help="folder to write")
    args = parser.parse_args(argv)
    from softswitch.config import ConfigError, load_config

    try:
        config = load_config(args.config)
    except (ConfigError, OSError) as exc:
        print(f"grafana: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rep = config.reporting
    for name, dash in dashboards(rep.thresholds, rep.sl_formula).items():
        (out / name).write_text(render(dash))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
