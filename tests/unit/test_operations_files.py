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


def _json_line(settings: Settings, msg: str, *, exc: BaseException | None = None, **extra) -> str:
    from enrichment_ai.observability.logs import formatter_for

    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    rec = logging.LogRecord("enrichment.process", logging.ERROR, __file__, 1, msg, None, exc_info)
    for key, value in extra.items():
        setattr(rec, key, value)
    return formatter_for(settings).format(rec)


def test_json_line_with_password_kv_stays_valid_json():
    """``password=`` in a message: masked inside the field, the line still parses (the
    line-level mask used to swallow the closing quote and comma)."""
    settings = Settings(log_format="json")
    line = _json_line(settings, "connect failed: password=hunter22", dsn="host=db password=hunter22 user=w")
    out = json.loads(line)
    assert "hunter22" not in line
    assert out["message"] == "connect failed: password=***" and out["dsn"] == "host=db password=*** user=w"
    assert out["process"] and out["level"] == "ERROR"


@pytest.mark.parametrize("url", ["postgresql://w:pa%22ss%5Cw0rd@db/x", "host=db user=w password='pa\"ss\\w0rd'"])
def test_json_line_redacts_a_password_json_would_escape(url):
    """A configured password with ``"`` and ``\\``: json.dumps escapes both, so it is masked
    in the record's fields (message, exception text, extras), before serialising."""
    secret = 'pa"ss\\w0rd'
    settings = Settings(log_format="json", database_url=url)
    try:
        raise ConnectionError(f"auth failed for {secret}")
    except ConnectionError as e:
        line = _json_line(settings, f"could not connect with {secret}", exc=e,
                          detail={"tried": [secret, 1]}, obj=RuntimeError(secret))
    out = json.loads(line)
    assert secret not in line and json.dumps(secret)[1:-1] not in line and "w0rd" not in line
    assert out["message"] == "could not connect with ***"
    assert "auth failed for ***" in out["exc"] and out["detail"] == {"tried": ["***", 1]} and out["obj"] == "***"


def test_text_lines_are_still_redacted():
    from enrichment_ai.observability.logs import formatter_for

    fmt = formatter_for(Settings(log_format="text", database_url="postgresql://w:hunter22@db/x"))
    rec = logging.LogRecord("x", logging.INFO, __file__, 1, "dsn postgresql://w:hunter22@db/x password=abc", None, None)
    line = fmt.format(rec)
    assert "hunter22" not in line and "abc" not in line


def test_no_batches_alert_is_per_analysis_queue():
    """EnrichmentNoBatches pairs each analysis queue's depth with that queue's batches: the
    background queue (a long nightly rollup) and the other analysis queue page nothing."""
    from typing import get_args

    (rule,) = [r for g in RULES["groups"] for r in g["rules"] if r["alert"] == "EnrichmentNoBatches"]
    expr = rule["expr"]
    assert "on ()" not in expr.replace("on()", "on ()") and "absent(" not in expr
    assert re.search(r"unless on \(queue\)", expr) and expr.count("by (queue)") == 2
    analysis = set(re.search(r'enrichment_queue_depth\{queue=~"([^"]+)"\}', expr).group(1).split("|"))
    assert analysis == set(get_args(Settings.model_fields["queue"].annotation))
    assert Settings().background_queue not in analysis
    assert set(metrics.BATCHES._labelnames) == {"queue"}  # the label the rule joins on
    assert "{{ $labels.queue }}" in rule["annotations"]["summary"]


#: series for promtool (1 sample a minute): name{labels} -> values
_NO_BATCH_CASES = {
    "background deep, analysis queues empty and idle": (
        {'enrichment_queue_depth{queue="background"}': "500x30", 'enrichment_queue_depth{queue="cpu"}': "0x30",
         'enrichment_queue_depth{queue="gpu"}': "0x30", 'enrichment_batches_total{queue="cpu"}': "7x30"}, []),
    "cpu busy and committing, gpu queue empty with no counter": (
        {'enrichment_queue_depth{queue="cpu"}': "40x30", 'enrichment_queue_depth{queue="gpu"}': "0x30",
         'enrichment_batches_total{queue="cpu"}': "0+10x30"}, []),
    "gpu events wait, no gpu batch ever, cpu committing": (
        {'enrichment_queue_depth{queue="cpu"}': "3x30", 'enrichment_queue_depth{queue="gpu"}': "12x30",
         'enrichment_batches_total{queue="cpu"}': "0+10x30"}, [("gpu", 12)]),
    "cpu events wait, cpu counter flat (workers stuck)": (
        {'enrichment_queue_depth{queue="cpu"}': "9x30", 'enrichment_queue_depth{queue="background"}': "0x30",
         'enrichment_batches_total{queue="cpu"}': "50x30"}, [("cpu", 9)]),
}


@pytest.mark.parametrize("case", list(_NO_BATCH_CASES))
def test_no_batches_alert_fires_only_for_the_waiting_queue(case, tmp_path):
    import shutil
    import subprocess

    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus): the "
                    "expression's evaluation is not checked here, only its shape (test above)")
    series, firing = _NO_BATCH_CASES[case]
    (tmp_path / "alerts.yml").write_text((ROOT / "deploy/prometheus/alerts.yml").read_text())
    alerts = [{"exp_labels": {"queue": q, "severity": "critical"},
               "exp_annotations": {"summary": f"No batch committed from queue {q} for 10 minutes while {n} events wait"}}
              for q, n in firing]
    spec = {"rule_files": ["alerts.yml"], "evaluation_interval": "1m",
            "tests": [{"interval": "1m", "input_series": [{"series": k, "values": v} for k, v in series.items()],
                       "alert_rule_test": [{"eval_time": "25m", "alertname": "EnrichmentNoBatches",
                                            "exp_alerts": alerts}]}]}
    (tmp_path / "test.yml").write_text(yaml.safe_dump(spec))
    run = subprocess.run([promtool, "test", "rules", "test.yml"], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
