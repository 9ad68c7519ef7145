"""Connecting to Redis, naming keys, and translating Redis failures.

Keys are named ``<prefix>:{<tag>}:<rest>``. Everything one command or script touches shares
the ``{tag}``, so on Redis Cluster, where a hash tag decides the slot, every script and
transaction runs on one node.

``THIQA_REDIS_URL`` names one of three topologies (:func:`parse_redis_url`):

* one server: ``redis://``, ``rediss://`` (TLS) or ``unix://`` (redis-py's own URL forms);
* a Redis Cluster: ``redis+cluster://[user:password@]host:port[,host:port...]`` (or
  ``rediss+cluster://``): the nodes listed are where discovery starts;
* a Sentinel group: ``redis+sentinel://[user:password@]host:port[,host:port...]/<service>``
  (or ``rediss+sentinel://``): the sentinels are asked where the master of ``<service>`` is,
  and again after each failover. The credentials are the data nodes'; the sentinels are
  reached without them.

redis-py's own cluster and Sentinel clients do the routing, the MOVED/ASK redirections and the
following of a failover; Thiqa only chooses them.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, cast
from urllib.parse import unquote

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.exceptions import RedisError

from service.errors import StoreUnavailable
from service.store.multiplexed import Multiplexed

__all__ = [
    "KeySpace",
    "RedisTopology",
    "connect",
    "open_pubsub",
    "parse_redis_url",
    "subscriber_for",
    "translate_errors",
]

#: Time allowed for one Redis command: verification must answer in milliseconds or fail
#: closed, never hang.
SOCKET_TIMEOUT = 2.0

#: Connections one process opens to one Redis node. A request that finds them all busy waits
#: up to SOCKET_TIMEOUT for one (a burst queues) rather than failing on the spot.
MAX_CONNECTIONS = 100

_SINGLE_SCHEMES = ("redis://", "rediss://", "unix://")
_MULTI = re.compile(
    r"^(?P<scheme>rediss?)\+(?P<kind>cluster|sentinel)://"
    r"(?:(?P<userinfo>[^@/]*)@)?(?P<nodes>[^/?#@]+)(?:/(?P<service>[^/?#]*))?$"
)
_NODE = re.compile(
    r"^(?:\[(?P<ip6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9.-]+)):(?P<port>[0-9]{1,5})$"
)
_SERVICE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


@dataclass(frozen=True, slots=True)
class RedisTopology:
    """What a ``THIQA_REDIS_URL`` names."""

    kind: Literal["single", "cluster", "sentinel"]
    #: The URL itself, for a single server (redis-py parses it).
    url: str = ""
    tls: bool = False
    nodes: tuple[tuple[str, int], ...] = ()
    service: str = ""
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)

    @property
    def may_have_replicas(self) -> bool:
        """Cluster and Sentinel exist to fail over to a replica; one server may have none."""
        return self.kind != "single"


def parse_redis_url(url: str) -> RedisTopology:
    """Read a ``THIQA_REDIS_URL``; ValueError, never echoing the URL (it may hold a password),
    when it is none of the accepted forms."""
    if url.startswith(_SINGLE_SCHEMES):
        return RedisTopology(kind="single", url=url, tls=url.startswith("rediss://"))
    match = _MULTI.fullmatch(url)
    if match is None:
        raise ValueError(
            "THIQA_REDIS_URL must be redis://, rediss://, unix://, "
            "redis+cluster://host:port[,host:port...] or "
            "redis+sentinel://host:port[,host:port...]/service (rediss+ for TLS)"
        )
    nodes = []
    for part in match["nodes"].split(","):
        node = _NODE.fullmatch(part.strip())
        if node is None or not 0 < int(node["port"]) < 65536:
            raise ValueError("each Redis node must be host:port")
        nodes.append((node["ip6"] or node["host"], int(node["port"])))
    kind = cast(Literal["cluster", "sentinel"], match["kind"])
    service = match["service"] or ""
    if kind == "sentinel" and not _SERVICE.fullmatch(service):
        raise ValueError("a redis+sentinel:// URL ends with /<service name> (letters, digits, ._-)")
    if kind == "cluster" and service:
        raise ValueError("a redis+cluster:// URL has no path (a cluster has one database)")
    username = password = None
    if match["userinfo"] is not None:
        user, _, secret = match["userinfo"].partition(":")
        username, password = (unquote(user) or None), (unquote(secret) or None)
    return RedisTopology(
        kind=kind,
        tls=match["scheme"] == "rediss",
        nodes=tuple(nodes),
        service=service,
        username=username,
        password=password,
    )


class _Cluster(RedisCluster):
    """redis-py's cluster client, started before its first command runs.

    Left to itself, redis-py 8.1 resolves a command's routing policy *before* it discovers the
    cluster, over start-up connections that discovery then replaces: twenty first commands
    sent at once fail on a closed connection. Discovering first (initialize() holds a lock, so
    only one task does it) makes the first burst as safe as any later one."""

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        if self._initialize:
            await self.initialize()
        return await super().execute_command(*args, **kwargs)


class _Single(aioredis.Redis):
    """One server's client; without TLS, with the pipelined connection the hot path shares
    (:mod:`service.store.multiplexed`), closed with it."""

    multiplexed: Multiplexed | None = None

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        if self.multiplexed is not None:
            self.multiplexed.close()
        await super().aclose(close_connection_pool)


def _multiplexed(kwargs: dict[str, Any]) -> Multiplexed:
    """The pipelined connection to the server redis-py's pool reaches, with its credentials,
    database and deadlines."""
    return Multiplexed(
        path=kwargs.get("path"),
        host=kwargs.get("host", "localhost"),
        port=int(kwargs.get("port", 6379)),
        username=kwargs.get("username"),
        password=kwargs.get("password"),
        db=int(kwargs.get("db") or 0),
        timeout=SOCKET_TIMEOUT,
        connect_timeout=SOCKET_TIMEOUT,
    )


class _BlockingSentinelPool(SentinelConnectionPool, aioredis.BlockingConnectionPool):
    """Sentinel's master-following pool, waiting for a free connection like the one-server
    pool does instead of failing when all are busy."""


class _SentinelMaster(aioredis.Redis):
    """The master a Sentinel group names; closing it also closes the connections to the
    sentinels themselves, which redis-py leaves open."""

    sentinel_group: Sentinel | None = None

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        if self.sentinel_group is not None:
            for watcher in self.sentinel_group.sentinels:
                await watcher.aclose()


def connect(url: str) -> aioredis.Redis:
    """A pooled client for the topology ``url`` names; nothing is sent until the first
    command.

    A cluster client is returned as the single-server type: it offers the same commands,
    scripts and pipelines to the stores, which is all they use (the hash tags keep each
    script and transaction on one slot)."""
    topology = parse_redis_url(url)
    common = {
        "socket_timeout": SOCKET_TIMEOUT,
        "socket_connect_timeout": SOCKET_TIMEOUT,
        "decode_responses": False,
    }
    pool = {"max_connections": MAX_CONNECTIONS, "timeout": SOCKET_TIMEOUT}
    if topology.kind == "single":
        single = cast(
            _Single,
            _Single.from_pool(
                aioredis.BlockingConnectionPool.from_url(
                    url, health_check_interval=15, **pool, **common
                )
            ),
        )
        if not topology.tls:
            single.multiplexed = _multiplexed(single.connection_pool.connection_kwargs)
        return single
    if topology.kind == "cluster":
        cluster = _Cluster(
            startup_nodes=[ClusterNode(host, port) for host, port in topology.nodes],
            ssl=topology.tls,
            username=topology.username,
            password=topology.password,
            socket_timeout=SOCKET_TIMEOUT,
            socket_connect_timeout=SOCKET_TIMEOUT,
            decode_responses=False,
        )
        return cast(aioredis.Redis, cluster)
    auth = {"username": topology.username, "password": topology.password}
    sentinel = Sentinel(
        list(topology.nodes),
        sentinel_kwargs={
            "socket_timeout": SOCKET_TIMEOUT,
            "socket_connect_timeout": SOCKET_TIMEOUT,
            "ssl": topology.tls,
        },
        ssl=topology.tls,
        **auth,
        **common,
    )
    master = cast(
        _SentinelMaster,
        sentinel.master_for(
            topology.service,
            redis_class=_SentinelMaster,
            connection_pool_class=_BlockingSentinelPool,
            health_check_interval=15,
            **pool,
        ),
    )
    master.sentinel_group = sentinel
    return master


def subscriber_for(client: aioredis.Redis) -> aioredis.Redis:
    """A client for the process's one pub/sub subscription, on a connection of its own: a
    burst of requests holding every pooled connection must not keep it from subscribing.

    On a cluster the client itself does (its pub/sub opens a dedicated connection to one
    node; classic messages reach every node). Close what this returns unless it is
    ``client``."""
    if isinstance(client, RedisCluster):
        return client
    pool = client.connection_pool
    if isinstance(client, _SentinelMaster) and client.sentinel_group is not None:
        assert isinstance(pool, SentinelConnectionPool)
        return cast(
            aioredis.Redis,
            client.sentinel_group.master_for(
                pool.service_name, connection_pool_class=SentinelConnectionPool, max_connections=2
            ),
        )
    own = aioredis.ConnectionPool(
        connection_class=pool.connection_class, max_connections=2, **pool.connection_kwargs
    )
    return aioredis.Redis.from_pool(own)


async def open_pubsub(subscriber: aioredis.Redis) -> PubSub:
    """A pub/sub on ``subscriber`` (from :func:`subscriber_for`). On a cluster it sits on a
    node picked at random, each time: after a node fails, the next one is likely alive."""
    if isinstance(subscriber, RedisCluster):
        await subscriber.initialize()
        return cast(PubSub, subscriber.pubsub(node=subscriber.get_random_node()))
    return subscriber.pubsub()


@asynccontextmanager
async def translate_errors() -> AsyncIterator[None]:
    try:
        yield
    except (RedisError, OSError) as exc:
        # Said as what it is: this also reaches the client commands, which use no status list.
        raise StoreUnavailable("Redis, where Thiqa keeps its data, cannot answer.") from exc


class KeySpace:
    """Names every Redis key Thiqa uses."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    # Status lists: bits, allocation bitmap, metadata and credential records share a tag.
    def status_bits(self, list_id: str) -> str:
        return f"{self.prefix}:{{sl:{list_id}}}:bits"

    def status_used(self, list_id: str) -> str:
        return f"{self.prefix}:{{sl:{list_id}}}:used"

    def status_meta(self, list_id: str) -> str:
        return f"{self.prefix}:{{sl:{list_id}}}:meta"

    def credential(self, list_id: str, serial: str) -> str:
        return f"{self.prefix}:{{sl:{list_id}}}:cred:{serial}"

    def current_list(self) -> str:
        return f"{self.prefix}:{{lists}}:current"

    def all_lists(self) -> str:
        return f"{self.prefix}:{{lists}}:all"

    # Status lists of other issuers, cached no longer than their ttl; data and bits together.
    # One hash slot per issuer, so its cache budget and its lists' newest iat are kept in the
    # same script as the lists themselves.
    def remote_list_data(self, issuer_hash: str, uri_hash: str) -> str:
        return f"{self.prefix}:{{rsl:{issuer_hash}}}:{uri_hash}:data"

    def remote_list_bits(self, issuer_hash: str, uri_hash: str) -> str:
        return f"{self.prefix}:{{rsl:{issuer_hash}}}:{uri_hash}:bits"

    def remote_issuer(self, issuer_hash: str, part: str) -> str:
        """``cached`` (lists by expiry), ``sizes`` (bytes by list), ``newest`` (iat by list)."""
        return f"{self.prefix}:{{rsl:{issuer_hash}}}:{part}"

    # Clients: looked up by key id on every request; listed by name.
    def api_key(self, key_id: str) -> str:
        return f"{self.prefix}:{{clients}}:key:{key_id}"

    def client(self, name: str) -> str:
        return f"{self.prefix}:{{clients}}:client:{name}"

    def rate_window(self, key_id: str, window: int) -> str:
        return f"{self.prefix}:{{clients}}:rate:{key_id}:{window}"

    def client_names(self) -> str:
        return f"{self.prefix}:{{clients}}:names"

    # The audit trail, in a slot of its own, never written by a status script: status, key
    # and client events in one stream, verifications in another, so verification traffic
    # can never trim an event out of the first.
    def audit_stream(self) -> str:
        return f"{self.prefix}:{{audit}}:stream"

    def audit_verifications(self) -> str:
        return f"{self.prefix}:{{audit}}:verifications"

    # OpenID4VCI: one hash per credential offer (code, transaction code, access token and,
    # until issuance, the claims), so each step is one script on one slot; c_nonces apart.
    def credential_offer(self, offer_id: str) -> str:
        return f"{self.prefix}:{{vci:{offer_id}}}:offer"

    def c_nonce(self, nonce: str) -> str:
        return f"{self.prefix}:{{cn:{nonce}}}:nonce"

    def c_nonce_secret(self) -> str:
        return f"{self.prefix}:{{cn}}:secret"

    # OpenID4VP: one hash per presentation request (request, nonce, then the result), and the
    # channel its waiters listen on for the answer.
    def presentation_request(self, request_id: str) -> str:
        return f"{self.prefix}:{{vp:{request_id}}}:request"

    def presentation_events(self, request_id: str) -> str:
        return f"{self.prefix}:{{vp:{request_id}}}:events"

    def presentation_events_pattern(self) -> str:
        """Every request's channel, for the process's one subscriber (store.events)."""
        return f"{self.prefix}:{{vp:*}}:events"
