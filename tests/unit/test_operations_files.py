"""What operations ship stays true: alert rules and the dashboard name only metrics that
exist, docs/operations.md documents every metric, URLs never print a password, JSON log
lines carry the batch's fields."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest
import yaml

from enrichment_ai.config import Settings
from enrichment_ai.observability import metrics
from enrichment_ai.observability.redact import Redactor, mask_url, passwords_in

ROOT = Path(__file__).resolve().parents[2]
RULES = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())
PROM = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
DASHBOARD = json.loads((ROOT / "deploy/grafana/dashboards/enrichment.json").read_text())
DOCS = (ROOT / "docs/operations.md").read_text()
#: families the exporter's QueueDepthCollector adds at scrape time
COLLECTED = {"enrichment_queue_depth", "enrichment_broker_up", "enrichment_broker_unacked_messages",
             "enrichment_queue_scrape_duration_seconds"}
_SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum", "_created"),
             "gauge": ("",), "info": ("_info",)}


def families() -> dict[str, str]:
    """family name -> type, of every metric object in the metrics module."""
    out = {}
    from prometheus_client.metrics import MetricWrapperBase

    for obj in vars(metrics).values():
        if isinstance(obj, MetricWrapperBase):
            for fam in obj.describe():
                out[fam.name] = fam.type
    return out


def sample_names() -> set[str]:
    names = {f"{n}{s}" for n, t in families().items() for s in _SUFFIXES[t]}
    return names | COLLECTED


def referenced(expr: str) -> set[str]:
    return set(re.findall(r"\benrichment_[a-z0-9_]+", expr))


def test_metric_names_follow_prometheus_conventions():
    fams = families()
    assert len(fams) >= 20
    for name, kind in fams.items():
        assert name.startswith("enrichment_"), name
        if kind == "histogram" and "seconds" in name:
            assert name.endswith("_seconds"), name


def test_alert_rules_parse_and_reference_existing_metrics():
    rules = [r for g in RULES["groups"] for r in g["rules"]]
    assert {"EnrichmentQueueGrowing", "EnrichmentLatencyHigh", "EnrichmentNoBatches",
            "EnrichmentErrorRate", "EnrichmentQuarantine"} <= {r["alert"] for r in rules}
    known = sample_names()
    for r in rules:
        assert r["labels"]["severity"] in {"warning", "critical"}
        assert r["expr"].count("(") == r["expr"].count(")"), r["alert"]
        assert referenced(r["expr"]) <= known, (r["alert"], referenced(r["expr"]) - known)
    assert PROM["rule_files"] == ["/etc/prometheus/alerts.yml"]
    assert PROM["scrape_configs"][0]["dns_sd_configs"][0]["port"] == Settings.model_fields["metrics_port"].default


def test_dashboard_queries_reference_existing_metrics_and_tables():
    known = sample_names()
    exprs = [t["expr"] for p in DASHBOARD["panels"] for t in p.get("targets", []) if "expr" in t]
    sqls = [t["rawSql"] for p in DASHBOARD["panels"] for t in p.get("targets", []) if "rawSql" in t]
    assert len(exprs) >= 10 and len(sqls) >= 2
    for e in exprs:
        assert referenced(e) <= known, referenced(e) - known
    assert any("community_health" in s for s in sqls) and any("reputation_scores" in s for s in sqls)
    titles = " ".join(p["title"] for p in DASHBOARD["panels"]).lower()
    for word in ("throughput", "latency", "queue depth", "errors"):
        assert word in titles


def test_docs_document_every_metric_and_nothing_else():
    documented = set(re.findall(r"^\| `(enrichment_[a-z0-9_]+)` \| (?:counter|gauge|histogram) \|", DOCS, flags=re.M))
    exposed = {f"{n}_total" if t == "counter" else n for n, t in families().items()} | COLLECTED
    assert documented == exposed, (exposed - documented, documented - exposed)
    assert "operations-dashboard.png" in DOCS


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://app:s3cr3t@db:5432/x", "postgresql://app:***@db:5432/x"),
    ("postgresql://app@db/x?password=s3cr3t&sslmode=require", "postgresql://app@db/x?password=***&sslmode=require"),
    ("host=db user=app password=s3cr3t dbname=x", "host=db user=app password=*** dbname=x"),
    ("redis://:s3cr3t@redis:6379/0", "redis://:***@redis:6379/0"),
    ("redis+socket:///tmp/r.sock", "redis+socket:///tmp/r.sock"),
])
def test_mask_url(url, shown):
    assert mask_url(url) == shown
    assert "s3cr3t" not in mask_url(url)


def test_redactor_removes_configured_passwords_anywhere():
    secrets = passwords_in(["postgresql://app:p%40ss-word@db/x", "host=db password='pw two'"])
    assert "p@ss-word" in secrets and "pw two" in secrets
    red = Redactor(secrets)
    assert red("could not connect with p@ss-word to db") == "could not connect with *** to db"
    assert red("dsn postgresql://u:other@h/x") == "dsn postgresql://u:***@h/x"


def test_json_lines_carry_the_batch_fields_and_no_secret():
    from enrichment_ai.observability.logs import bind_batch, formatter_for
    from workers.batching import Event

    fmt = formatter_for(Settings(log_format="json", database_url="postgresql://w:hunter22@db/x"))
    captured = []

    @bind_batch
    def run(self, events):
        rec = logging.LogRecord("enrichment.process", logging.INFO, __file__, 1,
                                "batch b1: url postgresql://w:hunter22@db/x", None, None)
        rec.batch_id, rec.events, rec.timings_s = "b1", 2, {"fetch": 0.01}
        captured.append(fmt.format(rec))

    run(None, [Event("t1"), Event("t2")])
    line = json.loads(captured[0])
    assert line["level"] == "INFO" and line["logger"] == "enrichment.process"
    assert line["batch_id"] == "b1" and line["events"] == 2 and line["timings_s"] == {"fetch": 0.01}
    assert line["task_ids"] == ["t1", "t2"]
    assert "hunter22" not in captured[0]
