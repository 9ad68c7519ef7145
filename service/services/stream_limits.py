"""How many event streams and long-polls may be open at once: per client, and in total.

Each open one costs a task and a look at Redis every second (service.services.openid4vp_
verifier), though no connection of its own (service.store.events). The counts are per
process: with N processes behind a balancer, a client may hold up to N times its share.
"""

from __future__ import annotations

from collections import Counter

from service.errors import TooManyStreams

__all__ = ["StreamLease", "StreamLimits"]


class StreamLease:
    """One open stream's place; :meth:`release` gives it back (repeating it does nothing)."""

    def __init__(self, limits: StreamLimits, client: str) -> None:
        self._limits = limits
        self._client: str | None = client

    def release(self) -> None:
        if self._client is not None:
            self._limits._release(self._client)
            self._client = None

    def __enter__(self) -> StreamLease:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


class StreamLimits:
    def __init__(self, *, per_client: int, total: int) -> None:
        self._per_client = per_client
        self._total = total
        self._open: Counter[str] = Counter()

    @property
    def open_streams(self) -> int:
        return self._open.total()

    def open(self, client: str) -> StreamLease:
        """A place for one more stream of ``client``; TooManyStreams when there is none."""
        if self._open[client] >= self._per_client:
            raise TooManyStreams(
                f"This client has {self._per_client} event streams and long-polls open; "
                "close one or poll without wait."
            )
        if self._open.total() >= self._total:
            raise TooManyStreams("This server has as many open streams as it takes.")
        self._open[client] += 1
        return StreamLease(self, client)

    def _release(self, client: str) -> None:
        self._open[client] -= 1
        if self._open[client] <= 0:
            del self._open[client]
