"""Every metric Cohortline defines is described in the README's Metrics section, and the Grafana
dashboard and the alerting rules ask only for metrics that exist."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEFINING = ("api/metrics.py", "projections/metrics.py", "streams/metrics.py")
NAME = re.compile(r"\bcohortline_[a-z_]+")
SERIES_SUFFIXES = ("_bucket", "_count", "_sum")


def defined() -> set[str]:
    return {name for path in DEFINING for name in NAME.findall((ROOT / path).read_text())}


def test_the_readme_describes_every_metric():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Metrics") : readme.index("## Operations")]
    described = set(NAME.findall(section))
    names = defined()
    assert len(names) >= 20
    assert names - described == set(), "metrics without a description in the README"
    assert described - names == set(), "the README describes metrics that do not exist"


def test_the_dashboard_asks_only_for_metrics_that_exist_and_shows_them_all():
    dashboard = json.loads((ROOT / "docs/grafana/cohortline.json").read_text())
    expressions = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", ())]
    asked = set()
    for expression in expressions:
        for name in NAME.findall(expression):
            for suffix in SERIES_SUFFIXES:
                name = name.removesuffix(suffix)
            asked.add(name)
    names = defined()
    assert asked - names == set()
    assert names - asked == set(), "metrics the dashboard does not show"


def test_the_alerting_rules_ask_only_for_metrics_that_exist():
    text = (ROOT / "docs/prometheus/alerts.yml").read_text()
    rules = [rule for group in yaml.safe_load(text)["groups"] for rule in group["rules"]]
    assert rules and all(rule["alert"] and rule["expr"] for rule in rules)
    assert set(NAME.findall(text)) - defined() == set()
