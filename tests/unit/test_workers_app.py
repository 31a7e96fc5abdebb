"""The Celery app factory and the pure parts of the worker layer (no broker needed)."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest

from enrichment_ai.config import Settings
from enrichment_ai.process import MALFORMED_ID, decode_ids
from workers.app import create_app, transport_options
from workers.batching import Event, backoff_s
from workers.tasks import message_id_of

URL = "redis://localhost:1/0"  # never connected to: building an app opens no connection


def test_importing_workers_configures_nothing():
    code = ("import celery, workers.app, workers.tasks, workers.batching, workers.context; "
            "from celery._state import _apps; "
            "assert not [a for a in _apps if a.main == 'enrichment'], 'app configured at import'; "
            "import sys; assert 'torch' not in sys.modules, 'models imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_app_routes_to_the_configured_queue_with_late_acks():
    app = create_app(Settings(redis_url=URL, queue="gpu", batch_max_size=32, visibility_timeout_s=120))
    conf = app.conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.accept_content == ["json"] and conf.task_serializer == "json"
    assert conf.task_default_queue == "gpu"
    assert app.amqp.router.route({}, "enrichment.analyze_message")["queue"].name == "gpu"
    assert conf.broker_transport_options["visibility_timeout"] == 120
    assert conf.worker_prefetch_multiplier >= 32  # a whole batch can be buffered unacked
    task = app.tasks["enrichment.analyze_message"]
    assert task.flush_every == 32 and task.acks_late


def test_background_tasks_never_route_to_the_analysis_queue():
    from workers.app import ANALYZE, BACKGROUND_TASKS

    app = create_app(Settings(redis_url=URL, queue="cpu", background_queue="bg"))
    route = app.amqp.router.route
    assert route({}, ANALYZE)["queue"].name == "cpu"
    assert {route({}, name)["queue"].name for name in BACKGROUND_TASKS} == {"bg"}
    assert set(BACKGROUND_TASKS) | {ANALYZE} == {n for n in app.tasks if n.startswith("enrichment.")}


def test_worker_queue_spec():
    from workers.app import consumed_queues

    s = Settings(background_queue="bg")
    assert consumed_queues("cpu", s) == ["cpu"]
    assert consumed_queues("cpu,background", s) == ["cpu", "bg"]
    assert consumed_queues(" background , bg ", s) == ["bg"]
    with pytest.raises(ValueError, match="unknown queue"):
        consumed_queues("cpu,fast", s)
    with pytest.raises(ValueError):
        consumed_queues("", s)


def test_torch_threads_split_the_cores_over_the_pool(monkeypatch):
    import os

    from enrichment_ai.cli.worker import torch_threads

    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1, 2, 3}, raising=False)
    assert torch_threads(Settings(), 1) == 4
    assert torch_threads(Settings(), 2) == 2
    assert torch_threads(Settings(), 8) == 1
    assert torch_threads(Settings(torch_threads=3), 2) == 3


def test_default_concurrency_is_a_process_per_core_for_cpu_analysis_only(monkeypatch):
    import os

    import torch

    from enrichment_ai.cli.worker import default_concurrency

    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert default_concurrency(Settings(device="cpu"), "cpu") == 4
    assert default_concurrency(Settings(device="auto"), "cpu") == 4
    assert default_concurrency(Settings(device="cpu"), None) == 1  # background work alone
    assert default_concurrency(Settings(device="cpu"), "gpu") == 1
    assert default_concurrency(Settings(device="cuda"), "cpu") == 1  # one CUDA context
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert default_concurrency(Settings(device="auto"), "cpu") == 1


def test_encoder_precision_resolution(monkeypatch):
    from enrichment_ai.analysis import encoder

    monkeypatch.setattr(encoder, "native_bf16", lambda: True)
    assert encoder.resolve_precision("auto", "cpu") == "bf16"
    assert encoder.resolve_precision("auto", "cuda") == "fp32"
    assert encoder.resolve_precision("fp32", "cpu") == "fp32"
    monkeypatch.setattr(encoder, "native_bf16", lambda: False)
    assert encoder.resolve_precision("auto", "cpu") == "fp32"
    assert encoder.resolve_precision("bf16", "cpu") == "bf16"


def test_native_bf16_reads_the_cpu_flags(monkeypatch, tmp_path):
    import builtins

    from enrichment_ai.analysis.encoder import native_bf16

    real_open = builtins.open
    for flags, expected in (("fpu avx512f avx512_bf16 sse", True), ("fpu avx512f avx2", False)):
        info = tmp_path / "cpuinfo"
        info.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
        monkeypatch.setattr(builtins, "open",
                            lambda p, *a, _i=info, **k: real_open(_i if p == "/proc/cpuinfo" else p, *a, **k))
        assert native_bf16() is expected
    monkeypatch.setattr(builtins, "open", real_open)


def test_beat_schedule_covers_sweep_rollups_partitions_summaries():
    app = create_app(Settings(redis_url=URL, sweep_interval_s=45))
    tasks = {e["task"]: e["schedule"] for e in app.conf.beat_schedule.values()}
    assert tasks["enrichment.sweep"].total_seconds() == 45
    assert {"enrichment.nightly_rollup", "enrichment.ensure_partitions",
            "enrichment.summarize_quiet_channels"} <= set(tasks)
    assert app.conf.timezone == "UTC"


def test_unresolved_redis_url_is_a_clear_error():
    with pytest.raises(ValueError, match="ENRICHMENT_REDIS_URL"):
        create_app(Settings(redis_url=None))


def test_restore_scan_follows_a_short_visibility_timeout():
    opts = transport_options(Settings(visibility_timeout_s=8))
    assert opts["unacked_restore_interval"] <= 8 and opts["unacked_restore_throttle"] == 1


def test_decode_ids_dedupes_and_flags_malformed():
    a = uuid.uuid4()
    ids, bad = decode_ids([str(a), a, "nope", None, 42, str(a).upper()])
    assert ids == [a]
    assert [reason for _, reason in bad] == [MALFORMED_ID] * 3


def test_message_id_from_kwargs_or_first_arg():
    assert message_id_of(Event("t", (), {"message_id": "x"})) == "x"
    assert message_id_of(Event("t", ("y",), {})) == "y"
    assert message_id_of(Event("t")) is None


def test_backoff_grows_and_is_capped():
    assert 0.5 <= backoff_s(0) <= 1
    assert 8 <= backoff_s(4) <= 16
    assert backoff_s(30) <= 300


def test_two_apps_keep_their_own_tasks_and_settings():
    first = create_app(Settings(redis_url=URL, batch_max_size=8))
    second = create_app(Settings(redis_url=URL, batch_max_size=24))
    assert first.tasks["enrichment.analyze_message"].flush_every == 8
    assert second.tasks["enrichment.analyze_message"].flush_every == 24
    assert second.tasks["enrichment.sweep"].app is second


def test_token_batches_keep_padding_within_the_budget():
    from enrichment_ai.analysis.encoder import token_batches

    lengths = [10] * 70 + [200, 256, 300]  # sorted ascending, as the encoder sorts windows
    order = list(range(len(lengths)))
    batches = token_batches(lengths, order, 64, 4096)
    assert [i for b in batches for i in b] == order  # every window once, order kept
    assert all(len(b) <= 64 for b in batches)
    assert all(len(b) * max(lengths[i] for i in b) <= 4096 or len(b) == 1 for b in batches)
    assert batches[0] == list(range(64))  # short windows fill a whole batch
    assert len(token_batches([300] * 20, list(range(20)), 64, 4096)[0]) == 13  # 13 x 300 <= 4096 < 14 x 300
    assert token_batches([5000], [0], 64, 4096) == [[0]]  # longer than the budget: alone
    assert token_batches([], [], 64, 4096) == []


def test_token_batches_do_not_pad_short_windows_to_a_long_one():
    from enrichment_ai.analysis.encoder import token_batches

    # 7 tweets and a post: one pass would cost 64 + 8 x 150 padded tokens, two 64 + 7 x 30
    # and 64 + 150 (the modelled cost; a cut costs one pass overhead, 64 tokens)
    assert token_batches([30] * 7 + [150], list(range(8)), 64, 4096) == [list(range(7)), [7]]
    # near-equal lengths stay together: a cut would cost more than the padding it saves
    assert token_batches([28, 29, 30, 31, 32], [4, 2, 0, 1, 3], 64, 4096) == [[4, 2, 0, 1, 3]]
    lengths = sorted([12, 15, 18, 25, 33, 40, 52, 64, 90, 130, 180, 256] * 5)
    batches = token_batches(lengths, list(range(len(lengths))), 64, 4096)
    assert [i for b in batches for i in b] == list(range(len(lengths)))

    def cost(bs):
        return sum(64 + len(b) * lengths[b[-1]] for b in bs)

    fill = [[]]  # the cut this replaced: fill each pass up to the budget
    for i, n in enumerate(lengths):
        if fill[-1] and (len(fill[-1]) + 1) * n > 4096:
            fill.append([])
        fill[-1].append(i)
    assert cost(batches) < 0.7 * cost(fill)


def test_models_load_before_fork_only_for_a_cpu_prefork_pool(monkeypatch):
    import torch
    from celery.concurrency.prefork import TaskPool
    from celery.concurrency.solo import TaskPool as SoloPool

    from workers.context import can_load_before_fork

    cpu = Settings(device="cpu")
    assert can_load_before_fork(cpu, TaskPool)
    assert not can_load_before_fork(cpu, SoloPool)  # one process: it loads lazily, nothing to share
    assert not can_load_before_fork(cpu, None)
    assert not can_load_before_fork(cpu.model_copy(update={"load_before_fork": False}), TaskPool)
    assert not can_load_before_fork(Settings(device="cuda"), TaskPool)  # CUDA must not start before fork
    auto = Settings(device="auto")
    monkeypatch.setattr(torch.version, "cuda", "12.8")  # a CUDA build: asking for a GPU would init CUDA
    assert not can_load_before_fork(auto, TaskPool)
    monkeypatch.setattr(torch.version, "cuda", None)
    assert can_load_before_fork(auto, TaskPool)


def test_a_broker_that_never_replies_fails_the_command_instead_of_hanging(tmp_path):
    """A Redis that accepts the connection and never answers (a half-open socket, a server
    stuck mid-restart): with kombu's default a synchronous command waits forever and the
    worker's event loop stops; with ``broker_socket_timeout_s`` it fails as a lost
    connection, which Celery reconnects from."""
    import socket
    import threading
    import time

    from kombu.exceptions import OperationalError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    path = str(tmp_path / "silent.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept_and_ignore():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    threading.Thread(target=accept_and_ignore, daemon=True).start()
    app = create_app(Settings(redis_url=f"redis+socket://{path}", broker_socket_timeout_s=0.5))
    outcome: list[BaseException | str] = []

    def command():
        try:
            with app.connection_for_write() as conn:
                conn.default_channel.client.ping()
            outcome.append("replied")
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            outcome.append(exc)

    t0 = time.monotonic()
    worker = threading.Thread(target=command, daemon=True)
    worker.start()
    worker.join(30)
    stop.set()
    server.close()
    for s in held:
        s.close()
    assert not worker.is_alive(), "the command still waits on a broker that never replies"
    assert isinstance(outcome[0], (RedisTimeoutError, RedisConnectionError, OperationalError)), outcome
    assert time.monotonic() - t0 < 20



def test_a_redis_that_refuses_writes_for_now_is_retried_not_acked_as_failed():
    """READONLY (a replica after failover) and OOM (maxmemory) after the commit: the batch's
    alerts were lost for good (acked as failed); retried, the redelivery publishes them
    from the stored rows."""
    import redis

    from workers.batching import transient_errors

    for exc in (redis.exceptions.ReadOnlyError("READONLY"), redis.exceptions.OutOfMemoryError("OOM")):
        assert isinstance(exc, transient_errors())
    assert not isinstance(redis.exceptions.ResponseError("WRONGTYPE"), transient_errors())
