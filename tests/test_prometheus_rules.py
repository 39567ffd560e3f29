"""CMS-4 thresholds as Prometheus alerting rules (reporting/prometheus_rules.py,
conf/prometheus/): the committed files equal the generator's output for the demo config, they
load in `promtool check`, and `promtool test rules` shows each expression fires on the queue
that breaks its threshold and on no other (formulas of docs/metrics.md, for_s, queue filters).

promtool comes from Debian's `prometheus` package (scripts/install-peers); without it these
tests skip, except on CI (CI=true) where they fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from reporting.prometheus_rules import alert_rules, duration, main, render_yaml, rule_expr
from softswitch.config import ThresholdRule, load_config

REPO = Path(__file__).resolve().parent.parent
PROM = REPO / "conf" / "prometheus"


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is missing (scripts/install-peers installs package prometheus)")
        pytest.skip("promtool not installed (scripts/install-peers)")
    return path


def run_promtool(*args: str, cwd: Path | None = None) -> str:
    done = subprocess.run([promtool(), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def demo_output(capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["--config", str(REPO / "conf" / "softswitch.toml")]) == 0
    return capsys.readouterr().out


# -- the committed files ---------------------------------------------------------------------

def test_committed_rules_equal_the_generator_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert (PROM / "alerts.yml").read_text() == demo_output(capsys), (
        "conf/prometheus/alerts.yml is stale: python -m reporting.prometheus_rules "
        "--config conf/softswitch.toml > conf/prometheus/alerts.yml")


def test_rules_file_structure_matches_the_demo_thresholds() -> None:
    doc = yaml.safe_load((PROM / "alerts.yml").read_text())
    thresholds = load_config(REPO / "conf" / "softswitch.toml").reporting.thresholds
    assert len(thresholds) == 4
    [group] = doc["groups"]
    assert [r["alert"] for r in group["rules"]] == [t.name for t in thresholds]
    for rule, t in zip(group["rules"], thresholds, strict=True):
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}
        assert rule["labels"]["severity"] == t.severity
        assert rule["expr"].endswith(f"{t.op} {t.value:g}")
        assert ("for" in rule) == bool(t.for_s)
        assert "{{ $labels.queue }}" in rule["annotations"]["summary"]
        assert rule["annotations"]["summary_id"].startswith("Antrean ")
    by_name = {r["alert"]: r for r in group["rules"]}
    assert "[30m]" in by_name["service_level_low"]["expr"]
    assert "softswitch_queue_longest_wait_seconds" in by_name["longest_wait_high"]["expr"]


def test_promtool_checks_rules_and_config() -> None:
    out = run_promtool("check", "rules", str(PROM / "alerts.yml"))
    assert "SUCCESS: 4 rules found" in out
    out = run_promtool("check", "config", str(PROM / "prometheus.yml"))
    assert "SUCCESS" in out and "1 rule files found" in out


def test_prometheus_scrapes_the_switch_and_the_reporting_process() -> None:
    doc = yaml.safe_load((PROM / "prometheus.yml").read_text())
    targets = {t for job in doc["scrape_configs"] for sc in job["static_configs"]
               for t in sc["targets"]}
    config = load_config(REPO / "conf" / "softswitch.toml")
    assert config.http.listen in targets
    assert config.reporting.listen in targets
    assert doc["rule_files"] == ["alerts.yml"]
    assert doc["global"]["scrape_interval"] == "5s"


# -- the generator ---------------------------------------------------------------------------

@pytest.mark.parametrize(("seconds", "text"), [
    (1800, "30m"), (3600, "1h"), (7200, "2h"), (90, "90s"), (60, "1m"), (1.5, "1500ms"),
    (0, "0s"),
])
def test_duration(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_yaml_round_trips_awkward_strings() -> None:
    doc = {"groups": [{"name": "g", "rules": [
        {"alert": "a", "expr": 'x{queue=~"a\\\\.b|c"} > 1', "labels": {"k": "yes"},
         "annotations": {"summary": "it's: {{ $value }} # not a comment", "n": "tingkat ✓"}},
    ]}]}
    assert yaml.safe_load(render_yaml(doc)) == doc


def test_queue_filter_selects_by_regex() -> None:
    expr = rule_expr("calls_waiting", ">", 3, queues=("sales", "vip.support"))
    assert expr == ('max by (queue) (softswitch_queue_calls_waiting'
                    '{queue=~"sales|vip\\\\.support"}) > 3')
    expr = rule_expr("agents_available", "<", 1, queues=("sales",))
    assert 'softswitch_queue_agents{queue=~"sales",state="available"}' in expr


# -- what the expressions do (promtool test rules) -------------------------------------------

def _rules_file(tmp_path: Path, rules: list[Any], sl_formula: str = "default") -> Path:
    doc = alert_rules(rules, sl_formula=sl_formula)
    for r in doc["groups"][0]["rules"]:
        del r["annotations"]  # promtool compares annotations too; the expressions are tested
    path = tmp_path / "rules.yml"
    path.write_text(render_yaml(doc))
    return path


def _counters(queue: str, **per_minute: float) -> list[dict[str, str]]:
    names = {"answered": "calls_answered", "in_t": "calls_answered_within_threshold",
             "abandoned": "calls_abandoned", "short": "calls_short_abandoned",
             "abandoned_in_t": "calls_abandoned_within_threshold", "offered": "calls_offered",
             "wait": "answer_wait_seconds"}
    return [{"series": f'softswitch_queue_{names[k]}_total{{queue="{queue}"}}',
             "values": f"0+{v:g}x60"} for k, v in per_minute.items()]


def _promtool_test(tmp_path: Path, rules_path: Path, series: list[dict[str, str]],
                   checks: list[dict[str, Any]]) -> None:
    test = {"rule_files": [rules_path.name], "evaluation_interval": "1m",
            "tests": [{"interval": "1m", "input_series": series, "alert_rule_test": checks}]}
    path = tmp_path / "test.yml"
    path.write_text(yaml.safe_dump(test))
    run_promtool("test", "rules", path.name, cwd=tmp_path)


def _firing(name: str, at: str, *queues: str, severity: str = "warning",
            metric: str) -> dict[str, Any]:
    return {"eval_time": at, "alertname": name, "exp_alerts": [
        {"exp_labels": {"queue": q, "severity": severity, "metric": metric}} for q in queues]}


# Queue "q": A = 10, A_T = 8, B = 4, B_S = 2, B_T = 4 per minute; queue "idle": no calls.
@pytest.mark.parametrize(("formula", "fires"), [
    ("default", True),  # 8 / (10 + 4 - 2) = 0.67
    ("ignore_abandons", False),  # 8 / 10 = 0.8
    ("abandons_against", True),  # 8 / 14 = 0.57
    ("abandons_in_favour", False),  # (8 + 4) / 14 = 0.86
])
def test_service_level_expression_per_formula(tmp_path: Path, formula: str, fires: bool) -> None:
    rules = [ThresholdRule(name="sl_low", metric="service_level", op="<", value=0.75,
                           window_s=1800, severity="critical")]
    series = [*_counters("q", answered=10, in_t=8, abandoned=4, short=2, abandoned_in_t=4),
              *_counters("idle", answered=0, in_t=0, abandoned=0, short=0, abandoned_in_t=0)]
    expected = ("q",) if fires else ()
    _promtool_test(tmp_path, _rules_file(tmp_path, rules, formula), series, [
        _firing("sl_low", "40m", *expected, severity="critical", metric="service_level")])


def test_abandon_rate_asa_and_instant_expressions(tmp_path: Path) -> None:
    rules = [
        ThresholdRule(name="ab_high", metric="abandon_rate", op=">", value=0.05),
        ThresholdRule(name="asa_high", metric="asa_s", op=">", value=20, window_s=600),
        ThresholdRule(name="waiting_high", metric="calls_waiting", op=">", value=10),
        ThresholdRule(name="wait_long", metric="longest_wait_s", op=">", value=60, for_s=300),
        ThresholdRule(name="nobody", metric="agents_available", op="<", value=1,
                      queues=("q", "idle")),
    ]
    series = [
        # q: (4 - 2) / (14 - 2) = 0.17 abandoned; ASA 300 / 10 = 30 s
        *_counters("q", offered=14, answered=10, abandoned=4, short=2, wait=300),
        # calm: only short abandons (0 / 8 = 0); ASA 150 / 10 = 15 s
        *_counters("calm", offered=12, answered=10, abandoned=2, short=2, wait=150),
        *_counters("idle", offered=0, answered=0, abandoned=0, short=0, wait=0),
        {"series": 'softswitch_queue_calls_waiting{queue="q"}', "values": "12x60"},
        {"series": 'softswitch_queue_calls_waiting{queue="calm"}', "values": "10x60"},
        {"series": 'softswitch_queue_longest_wait_seconds{queue="q"}', "values": "75x60"},
        {"series": 'softswitch_queue_longest_wait_seconds{queue="calm"}', "values": "5x60"},
        *({"series": f'softswitch_queue_agents{{queue="{q}",state="{s}"}}', "values": f"{n}x60"}
          for q, s, n in [("q", "available", 0), ("q", "on_call", 3), ("calm", "available", 0),
                          ("idle", "available", 2)]),
    ]
    _promtool_test(tmp_path, _rules_file(tmp_path, rules), series, [
        _firing("ab_high", "40m", "q", metric="abandon_rate"),
        _firing("asa_high", "40m", "q", metric="asa_s"),
        _firing("waiting_high", "40m", "q", metric="calls_waiting"),
        _firing("wait_long", "3m", metric="longest_wait_s"),  # pending: for 5m
        _firing("wait_long", "10m", "q", metric="longest_wait_s"),
        # calm has no available agent either, but the rule names only q and idle
        _firing("nobody", "40m", "q", metric="agents_available"),
    ])


def test_rules_of_duck_typed_objects() -> None:
    rule = SimpleNamespace(name="x", metric="calls_waiting", op=">=", value=2.5, window_s=60,
                           for_s=90, queues=(), severity="warning")
    [r] = alert_rules([rule])["groups"][0]["rules"]
    assert r["expr"] == "max by (queue) (softswitch_queue_calls_waiting) >= 2.5"
    assert r["for"] == "90s"
