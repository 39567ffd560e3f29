"""Grafana (conf/grafana): the committed dashboards equal the generator's output for the demo
config, their JSON and provisioning files are consistent, their colours follow the threshold
rules, and — against a real switch started with a contact-centre config and scraped over
HTTP — every metric named by a panel, a template variable or an alert rule is exported by
`/metrics`. With promtool (scripts/install-peers), every panel expression also parses as
PromQL."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from reporting.grafana import DATASOURCE_UID, dashboards, main, render, threshold_steps
from softswitch.config import load_config
from tests.switchkit import metrics, running_switch, write_config

REPO = Path(__file__).resolve().parent.parent
GRAFANA = REPO / "conf" / "grafana"
DASHBOARDS = GRAFANA / "dashboards"
DEMO = REPO / "conf" / "softswitch.toml"
NAMES = ("wallboard.json", "queues.json", "agents.json")


def load(name: str) -> dict[str, Any]:
    return json.loads((DASHBOARDS / name).read_text())


def panels(dash: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for p in dash["panels"]:
        out.append(p)
        out.extend(p.get("panels", []))  # collapsed rows
    return out


def exprs() -> list[tuple[str, str, str]]:
    """(dashboard, panel title, expr) of every target of every dashboard."""
    return [(name, p["title"], t["expr"]) for name in NAMES for p in panels(load(name))
            for t in p.get("targets", [])]


# -- PromQL metric names ---------------------------------------------------------------------

KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
            "group_left", "group_right", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers outside strings, label matchers,
    ranges, grouping clauses and Grafana variables that are not functions or keywords."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    e = re.sub(r"\{[^}]*\}", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)
    e = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    e = re.sub(r"\$\{?\w+\}?", " ", e)
    names = set()
    for m in re.finditer(r"(?<![\w.])[a-zA-Z_:][\w:]*", e):
        if e[m.end():].lstrip().startswith("(") or m.group(0) in KEYWORDS:
            continue  # a function or an aggregation, or an operator word
        names.add(m.group(0))
    return names


def test_metric_names_extractor() -> None:
    assert metric_names(
        'sum by (queue) (increase(a_total{queue=~"$queue",x="y{z}"}[30m])) / '
        '(b{q="1"} - c) > bool 0.5 and on (queue) d offset 5m') == {"a_total", "b", "c", "d"}
    assert metric_names("max without (state) (rate(x[$__rate_interval])) * 3600") == {"x"}
    assert metric_names("label_values(softswitch_queue_calls_waiting, queue)") == {
        "softswitch_queue_calls_waiting", "queue"}  # variables are handled on their own


def variable_metrics() -> set[str]:
    out = set()
    for name in NAMES:
        for var in load(name)["templating"]["list"]:
            m = re.fullmatch(r"label_values\((\w+),\s*\w+\)", var["definition"])
            assert m, var["definition"]
            out.add(m.group(1))
    return out


def alert_rule_exprs() -> list[str]:
    doc = yaml.safe_load((REPO / "conf" / "prometheus" / "alerts.yml").read_text())
    return [r["expr"] for g in doc["groups"] for r in g["rules"]]


# -- the files -------------------------------------------------------------------------------

def test_committed_dashboards_equal_the_generator(tmp_path: Path) -> None:
    assert main(["--config", str(DEMO), "--out", str(tmp_path)]) == 0
    for name in NAMES:
        assert (DASHBOARDS / name).read_text() == (tmp_path / name).read_text(), (
            f"conf/grafana/dashboards/{name} is stale: python -m reporting.grafana "
            "--config conf/softswitch.toml --out conf/grafana/dashboards")
    assert sorted(p.name for p in DASHBOARDS.iterdir()) == sorted(NAMES)


def test_dashboards_are_consistent_grafana_json() -> None:
    uids = set()
    for name in NAMES:
        dash = load(name)
        assert dash["schemaVersion"] >= 36 and dash["title"] and dash["uid"] not in uids
        uids.add(dash["uid"])
        ids = [p["id"] for p in panels(dash)]
        assert len(ids) == len(set(ids)), name
        for p in panels(dash):
            assert p["type"] in {"stat", "timeseries", "table", "bargauge", "row"}, p["type"]
            g = p["gridPos"]
            assert g["x"] >= 0 and g["w"] > 0 and g["x"] + g["w"] <= 24 and g["h"] > 0
            assert p["datasource"] == {"type": "prometheus", "uid": DATASOURCE_UID}
            refs = [t["refId"] for t in p["targets"]]
            assert p["targets"] and len(refs) == len(set(refs)), p["title"]
            for t in p["targets"]:
                assert t["datasource"]["uid"] == DATASOURCE_UID and t["expr"].strip()
        variables = {v["name"]: v for v in dash["templating"]["list"]}
        used = {m for d, _, e in exprs() if d == name for m in re.findall(r"\$(\w+)", e)}
        assert used - {"__rate_interval"} == set(variables), name  # defined = used
        for var in variables.values():
            assert var["datasource"]["uid"] == DATASOURCE_UID
            assert var["definition"].startswith("label_values(")
    assert {v["name"] for v in load("wallboard.json")["templating"]["list"]} == {"queue"}
    assert {v["name"] for v in load("agents.json")["templating"]["list"]} == {"agent"}


def test_provisioning_points_at_the_dashboards_and_the_datasource() -> None:
    ds = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    [source] = ds["datasources"]
    assert source["uid"] == DATASOURCE_UID and source["type"] == "prometheus"
    prom = yaml.safe_load((REPO / "conf" / "prometheus" / "prometheus.yml").read_text())
    assert source["jsonData"]["timeInterval"] == prom["global"]["scrape_interval"]
    prov = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "softswitch.yml").read_text())
    [provider] = prov["providers"]
    assert provider["type"] == "file"
    path = Path(provider["options"]["path"].replace("${SOFTSWITCH_HOME}", str(REPO)))
    assert path.resolve() == DASHBOARDS.resolve()
    assert {p.name for p in path.glob("*.json")} == set(NAMES)


def _panel(dash: str, title: str) -> dict[str, Any]:
    return next(p for p in panels(load(dash)) if p["title"].startswith(title))


def test_colours_follow_the_demo_threshold_rules() -> None:
    rules = load_config(DEMO).reporting.thresholds
    panel_of = {"service_level": "Service level (last", "abandon_rate": "Abandon rate (last",
                "calls_waiting": "Calls waiting", "longest_wait_s": "Longest wait"}
    colour = {"warning": "orange", "critical": "red"}
    for r in rules:
        steps = _panel("wallboard.json", panel_of[r.metric])["fieldConfig"]["defaults"][
            "thresholds"]["steps"]
        if r.op in (">", ">="):  # coloured from the rule's value up
            assert {"color": colour[r.severity], "value": r.value} in steps, (r.name, steps)
        else:  # coloured below the rule's value, green from it
            assert steps[0] == {"color": colour[r.severity], "value": None}
            assert {"color": "green", "value": r.value} in steps


def test_threshold_steps_of_several_rules() -> None:
    def r(op: str, value: float, severity: str) -> SimpleNamespace:
        return SimpleNamespace(metric="service_level", op=op, value=value, severity=severity)

    assert threshold_steps([r("<", 0.8, "critical"), r("<", 0.9, "warning")],
                           "service_level") == [
        {"color": "red", "value": None}, {"color": "orange", "value": 0.8},
        {"color": "green", "value": 0.9}]
    assert threshold_steps([r(">", 60, "critical"), r(">=", 30, "warning")],
                           "service_level") == [
        {"color": "green", "value": None}, {"color": "orange", "value": 30.0},
        {"color": "red", "value": 60.0}]
    assert threshold_steps([], "asa_s") == [{"color": "green", "value": None}]


def test_rolling_service_level_follows_the_formula() -> None:
    rules = load_config(DEMO).reporting.thresholds
    default = render(dashboards(rules, "default")["wallboard.json"])
    favour = render(dashboards(rules, "abandons_in_favour")["wallboard.json"])
    assert "calls_short_abandoned_total" in default
    assert "calls_abandoned_within_threshold_total" not in default
    assert "calls_abandoned_within_threshold_total" in favour


# -- against a real switch -------------------------------------------------------------------

def _contact_centre_config(tmp_path: Path, extra_rules: str = "") -> Path:
    files = write_config(tmp_path)
    demo = load_config(DEMO).reporting
    lines = [f'\n[contact_centre]\nprompts = "{REPO / "conf" / "prompts"}"\n',
             "\n[reporting]\n", f'sl_formula = "{demo.sl_formula}"\n',
             "sl_thresholds = { sales = 30 }\n"]
    for r in demo.thresholds:
        lines.append("\n[[reporting.thresholds]]\n")
        for key, value in r.model_dump().items():
            lines.append(f"{key} = {json.dumps(list(value) if key == 'queues' else value)}\n")
    lines.append(extra_rules)
    lines.append('\n[[queues]]\nname = "general"\n\n[[queues]]\nname = "sales"\n')
    lines.append('\n[[agents]]\nid = "2001"\npin = "1234"\nqueues = { general = 0 }\n')
    lines.append('\n[[agents]]\nid = "2002"\npin = "1234"\nqueues = { general = 0, sales = 1 }\n')
    files.path.write_text(files.path.read_text() + "".join(lines))
    return files.path


def _exported(text: str) -> set[str]:
    names = set()
    for f in text_string_to_metric_families(text):
        names.add(f.name + "_total" if f.type == "counter" else f.name)
        names.update(s.name for s in f.samples)
    return names


async def test_every_queried_metric_is_exported_by_a_real_switch(tmp_path: Path) -> None:
    config = _contact_centre_config(tmp_path)
    async with running_switch(config) as switch:
        files = SimpleNamespace(http=f"http://127.0.0.1:{switch.http_bound[1]}")
        text = await metrics(files)  # type: ignore[arg-type]
    exported = _exported(text)
    # the CMS collector runs on the switch's own /metrics, with the configured queues/agents
    assert 'softswitch_queue_calls_waiting{queue="general"}' in text
    assert 'softswitch_queue_service_level_threshold_seconds{queue="sales"} 30.0' in text
    assert 'softswitch_agent_state{agent="2002",state="logged_out"} 1.0' in text
    assert "softswitch_sip_requests_total" in exported or "softswitch_registrations_total" \
        in exported
    missing: list[str] = []
    queried: set[str] = set()
    for dash, title, expr in exprs():
        names = metric_names(expr)
        assert names, (dash, title, expr)
        queried |= names
        missing += [f"{dash} / {title}: {n}" for n in sorted(names - exported)]
    for expr in alert_rule_exprs():
        names = metric_names(expr)
        assert names, expr
        missing += [f"alerts.yml: {n}" for n in sorted(names - exported)]
    missing += [f"template variable: {n}" for n in sorted(variable_metrics() - exported)]
    assert not missing, "\n".join(missing)
    assert len(queried) >= 20  # the dashboards use the exposition broadly


# -- PromQL syntax (promtool) ----------------------------------------------------------------

def test_panel_expressions_parse_as_promql(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is missing (scripts/install-peers installs package prometheus)")
        pytest.skip("promtool not installed (scripts/install-peers)")
    rules = []
    for i, (_, _, expr) in enumerate(exprs()):
        concrete = (expr.replace("$__rate_interval", "1m").replace("$queue", "general")
                    .replace("$agent", "2001"))
        rules.append({"record": f"grafana:panel_{i}", "expr": concrete})
    path = tmp_path / "panels.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    done = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rules)} rules found" in done.stdout
