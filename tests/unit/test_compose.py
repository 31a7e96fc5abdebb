"""docker-compose.yml can't be started here (no Docker engine); test what can be:
its shape, and that every command it runs is a real `enrichment-ai` command line."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from enrichment_ai.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def test_services_present():
    assert {"postgres", "redis", "migrate", "db-roles", "worker-cpu", "worker-gpu",
            "worker-background", "beat", "flower", "prometheus", "grafana"} <= set(SERVICES)


def test_ops_services_are_opt_in():
    for name in ("flower", "prometheus", "grafana"):
        assert SERVICES[name]["profiles"] == ["ops"], name
    assert "flower" in SERVICES["flower"]["image"]


@pytest.mark.parametrize("name", ["worker-cpu", "worker-gpu", "worker-background", "beat"])
def test_health_checks_are_real_cli_invocations(name):
    test = SERVICES[name]["healthcheck"]["test"]
    assert test[0] == "CMD" and test[1] == "enrichment-ai" and test[2] == "health"
    args = build_parser(test[2:]).parse_args(test[2:])
    assert args.command == "health"
    if name.startswith("worker"):
        queue = SERVICES[name]["command"][SERVICES[name]["command"].index("--queue") + 1]
        assert args.queue == [queue] and args.worker == f"enrichment-{queue}@%h"  # the worker's -n


def test_workers_connect_as_the_worker_role_and_serve_metrics():
    for name in ("worker-cpu", "worker-gpu", "worker-background", "beat"):
        env = SERVICES[name]["environment"]
        assert env["ENRICHMENT_DATABASE_URL"].startswith("postgresql://enrichment_worker:"), name
        assert env["ENRICHMENT_METRICS_PORT"] == "9191"
    assert SERVICES["migrate"]["environment"]["ENRICHMENT_DATABASE_URL"].startswith("postgresql://enrichment:")


def test_background_work_has_its_own_worker():
    assert SERVICES["worker-background"]["command"][2:4] == ["--queue", "background"]
    assert "background" not in SERVICES["worker-cpu"]["command"]


def test_redis_appends_only_and_postgres_keeps_a_volume():
    assert "--appendonly" in SERVICES["redis"]["command"]
    assert SERVICES["redis"]["command"][SERVICES["redis"]["command"].index("--appendonly") + 1] == "yes"
    assert any(v.endswith(":/var/lib/postgresql/data") for v in SERVICES["postgres"]["volumes"])


def test_gpu_worker_is_opt_in_with_a_device_reservation():
    gpu = SERVICES["worker-gpu"]
    assert gpu["profiles"] == ["gpu"]
    assert gpu["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    assert gpu["environment"]["ENRICHMENT_QUEUE"] == "gpu"
    assert "profiles" not in SERVICES["worker-cpu"]


@pytest.mark.parametrize("name", ["migrate", "worker-cpu", "worker-gpu", "worker-background", "beat"])
def test_commands_are_real_cli_invocations(name):
    argv = SERVICES[name]["command"]
    assert argv[0] == "enrichment-ai"
    args = build_parser(argv[1:]).parse_args(argv[1:])  # SystemExit on an unknown option
    assert args.command == argv[1]


@pytest.mark.parametrize("name", ["migrate", "worker-cpu", "worker-gpu", "beat"])
def test_app_services_point_at_compose_postgres_and_redis(name):
    env = SERVICES[name]["environment"]
    assert "@postgres:5432/" in env["ENRICHMENT_DATABASE_URL"]
    assert env["ENRICHMENT_REDIS_URL"].startswith("redis://redis:6379")


def test_workers_wait_for_migrations():
    for name in ("worker-cpu", "worker-gpu", "worker-background", "beat"):
        assert SERVICES[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
