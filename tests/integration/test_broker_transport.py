"""The Redis transport the workers use (workers.broker): kombu's, minus the two ways a
worker's event loop could stop for good after a broker restart."""

from __future__ import annotations

import threading

from kombu import Connection, Exchange, Queue
from kombu.asynchronous import Hub

from enrichment_ai.config import Settings
from workers import broker
from workers.app import create_app, transport_options


def _connection(redis_url: str) -> Connection:
    broker.install()
    return Connection(redis_url, transport_options=transport_options(Settings()))


def test_every_redis_url_form_gets_the_project_transport(settings):
    app = create_app(settings)  # installs it
    for url in (settings.redis_url, "redis://127.0.0.1:6379/0", "rediss://127.0.0.1:6380/0"):
        with app.connection_for_write(url) as conn:
            assert type(conn.transport) is broker.Transport, url
    assert broker.Transport.Channel is broker.Channel


def test_a_stale_readiness_on_the_pubsub_socket_does_not_block_the_loop(redis_url):
    """The remote-control (pub/sub) connection is read when the event loop says it is
    readable; with nothing there the read must return, not wait for the next
    broadcast (redis-py 8.1 ignores socket_timeout on a blocking pub/sub read)."""
    with _connection(redis_url) as conn:
        channel = conn.default_channel
        exchange = Exchange("pidbox-test", type="fanout")
        queue = Queue("pidbox-test-q", exchange=exchange, auto_delete=True)
        queue(channel).declare()
        received = []
        channel.basic_consume(queue.name, True, lambda message: received.append(message), "test")
        conn.transport.cycle.on_poll_start()  # connects and PSUBSCRIBEs, as the worker's loop does
        result: dict = {}

        def receive():
            result["first"] = channel._receive()  # the PSUBSCRIBE confirmation
            result["second"] = channel._receive()  # nothing: a stale readiness

        reader = threading.Thread(target=receive, daemon=True)
        reader.start()
        reader.join(5)
        assert not reader.is_alive(), "the pub/sub read blocked with nothing to read"
        assert result == {"first": False, "second": False}  # a subscribe reply delivers nothing

        conn.Producer().publish({"method": "ping"}, exchange=exchange, routing_key="")
        assert channel.subclient.connection.can_read(timeout=5)
        assert channel._receive() is True  # a real broadcast is still read and delivered
        assert [m.decode() for m in received] == [{"method": "ping"}]


def test_a_hub_reset_drops_the_transport_poll_callback(redis_url):
    """Celery resets the hub when the broker connection fails and then connects anew;
    the old transport must no longer poll (and re-register) its sockets every tick."""
    hub = Hub()
    try:
        with _connection(redis_url) as conn:
            before = set(hub.on_tick)
            conn.transport.register_with_event_loop(conn.connection, hub)
            assert len(hub.on_tick - before) == 1
            hub.reset()
            assert hub.on_tick == before
            assert not hub.on_close  # the hook went with it
    finally:
        hub.close()


def test_a_channel_closed_after_its_connection_still_returns_its_unacked_message(redis_url):
    """With late acks a worker holds delivered, unacknowledged messages; closing its channel
    returns them to the queue. When the kombu Connection had already let go of the
    transport (kombu #582/#970: Celery's consumer stop after a broker failure), kombu's
    close died of ``'NoneType' object has no attribute 'hostname'`` and returned nothing."""
    queue = Queue("restore-after-close-test")
    conn = _connection(redis_url)
    channel = conn.channel()
    queue(channel).declare()
    channel.queue_purge(queue.name)
    conn.Producer(channel).publish({"n": 1}, routing_key=queue.name)
    held = channel.basic_get(queue.name, no_ack=False)  # delivered, not acked: the worker's held batch
    assert held is not None and channel.qos._delivered
    conn._do_close_transport()  # what Connection._close does: transport.client = None
    channel.close()  # kombu's own transport: AttributeError here
    with _connection(redis_url) as again:
        back = again.default_channel.basic_get(queue.name, no_ack=True)
        assert back is not None and back.payload == {"n": 1}
        assert again.default_channel.basic_get(queue.name, no_ack=True) is None  # once, not twice
    assert channel._pool is None and channel._async_pool is None  # the restore's pool closed again
