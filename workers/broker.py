"""kombu's Redis transport with three fixes for a worker that survives a broker restart.

Seen here (``tests/reliability/test_faults_at_scale.py``, in about one CI run in eight):
after Redis restarted, the worker's event loop stopped for good, its main thread in
``Channel._receive_one`` → redis-py ``PubSub.parse_response`` → ``sock.recv``, so it
consumed nothing more while it looked alive. Two things in kombu 5.7 / redis-py 8.1
make that possible, and this module mends both (and a third way a restart ended a worker):

1. **An unbounded read in the event loop.** kombu reads the pub/sub connection (remote
   control: ``inspect``, ``enrichment-ai health``) with ``PubSub.parse_response()``,
   i.e. ``block=True``. Since redis-py 8.1 (redis/redis-py#4119) a blocking pub/sub read
   ignores ``socket_timeout`` and waits for the next message, however long. kombu calls
   it whenever the event loop reports the socket readable; if that readiness was stale,
   or redis-py reconnected inside the read (its retry does), nothing may ever come. Our
   channel first checks, without waiting, that the connection has something to read,
   and then reads with the socket timeout, as redis-py did before 8.1.
2. **A transport that outlives its connection.** ``register_with_event_loop`` adds a
   poll callback to the worker hub's ``on_tick`` and nothing ever removes it: after a
   reconnect (a new connection, a new transport) the old transport's callback still
   runs every tick, re-registering its channels' sockets, possibly under file
   descriptor numbers the new connection now uses, and feeding their readiness to the
   old channels. Celery resets the hub when the connection fails; our transport drops
   its callback then.

3. **A channel closed after its connection.** Returning a closed channel's unacked
   messages reads the connection's address from the kombu ``Connection``, which may
   already have let go of the transport: the worker died of an ``AttributeError``
   instead (:meth:`Channel._connparams`).

All three are subclasses rather than patches, selected by registering this transport under
kombu's ``redis``/``rediss`` aliases (:func:`install`, called by ``create_app``): the
URL forms the project accepts (``redis://``, ``rediss://``, ``redis+socket://``) take
their transport from the alias, and a ``broker_transport`` setting cannot override a
``redis+socket://`` URL. Remove this module when kombu reads pub/sub without blocking
and unregisters on reset, and restores a channel's messages without its Connection.
"""

from __future__ import annotations

import functools
from queue import Empty

from kombu import transport as kombu_transport
from kombu.transport import redis as kombu_redis
from kombu.utils.objects import cached_property

#: Read timeout for the pub/sub connection when the transport options set none.
DEFAULT_PUBSUB_READ_TIMEOUT_S = 10.0

ALIASES = ("redis", "rediss")


def _bounded_parse_response(pubsub, read_timeout: float, block: bool = True, timeout: float = 0):
    """``PubSub.parse_response`` with a blocking read turned into one bounded by
    ``read_timeout`` (None when nothing came: kombu then reads nothing)."""
    if block:
        block, timeout = False, read_timeout
    return type(pubsub).parse_response(pubsub, block=block, timeout=timeout)


class Channel(kombu_redis.Channel):
    def __init__(self, connection, **kwargs):
        #: the kombu Connection's info (URL parts), kept for :meth:`_connparams`
        self._conninfo = connection.client
        super().__init__(connection, **kwargs)

    def _connparams(self, asynchronous=False):
        """kombu's, also once the kombu Connection has let go of its transport
        (``transport.client = None``). Closing a channel returns its unacknowledged
        messages (with late acks: the batch the worker held) to the queue through a fresh
        pool; if the Connection was closed first (Celery's consumer stop after a broker
        failure; kombu #582, #970) kombu read ``None.hostname`` there and the worker died
        of an ``AttributeError`` (seen in the Redis-restart stress runs) instead of returning
        them. With the info kept from the channel's opening the restore connects and
        returns them; if Redis is down it fails with a connection error, which Celery's
        close path ignores, and kombu's visibility restore returns them later."""
        transport = self.connection
        if transport.client is not None or self._conninfo is None:
            return super()._connparams(asynchronous)
        transport.client = self._conninfo
        try:
            return super()._connparams(asynchronous)
        finally:
            transport.client = None

    def close(self):
        super().close()
        self._disconnect_pools()  # a restore inside the close may have opened a pool after kombu closed them

    @cached_property
    def subclient(self):
        """The pub/sub client (kombu's), whose blocking reads are bounded."""
        pubsub = self._create_client(asynchronous=True).pubsub()
        pubsub.parse_response = functools.partial(
            _bounded_parse_response, pubsub, self.socket_timeout or DEFAULT_PUBSUB_READ_TIMEOUT_S)
        return pubsub

    def _receive_one(self, c):
        """Read one pub/sub reply only if there is one to read now (kombu reads
        unconditionally, trusting the event loop's readiness)."""
        try:
            ready = c.connection is not None and c.connection.can_read(timeout=0)
        except self.connection_errors:
            self._in_listen = None
            raise
        if not ready:
            raise Empty()
        return super()._receive_one(c)


class Transport(kombu_redis.Transport):
    Channel = Channel

    def register_with_event_loop(self, connection, loop):
        before = set(loop.on_tick)
        super().register_with_event_loop(connection, loop)
        added = set(loop.on_tick) - before

        def forget(hub) -> None:
            # hub.reset() (Celery: the connection failed) or hub.close(): this
            # transport's connection is done with; its poll callback must not survive
            hub.on_close.discard(forget)
            hub.on_tick.difference_update(added)

        loop.on_close.add(forget)


def install() -> None:
    """Make this transport the one kombu uses for Redis URLs in this process
    (idempotent). kombu caches resolved transports by name, so the cache entries are
    dropped too."""
    path = f"{__name__}:Transport"
    for alias in ALIASES:
        if kombu_transport.TRANSPORT_ALIASES.get(alias) != path:
            kombu_transport.TRANSPORT_ALIASES[alias] = path
            kombu_transport._transport_cache.pop(alias, None)
