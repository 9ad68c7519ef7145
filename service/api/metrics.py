"""Prometheus metrics, served at ``/metrics`` in the text exposition format.

Each app has its own :class:`~prometheus_client.CollectorRegistry`, not the process-wide
default: tests build many apps in one process, and two apps must never add to each other's
counters. With several uvicorn workers (``thiqa serve --workers N``) prometheus_client's
multiprocess mode keeps each worker's values in files of one folder, and a scrape of any
worker sums the whole process group (see README, Operations).

Labels are bounded: the route *template* (``/v1/credentials/{credential_id}/revoke``), never
the raw path, which would put credential ids into label values and grow without end; paths
that match no route share ``route="unmatched"``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from service.core.openid4vp import Outcome
from service.core.verify import Verdict

__all__ = ["Metrics", "MetricsDep", "metrics_endpoint", "metrics_of"]

#: Request latency buckets, in seconds: verification answers in milliseconds.
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self, *, multiprocess_dir: str | None = None) -> None:
        #: Set when uvicorn runs several workers (api.server.serve): every worker's counters
        #: live in files there, and a scrape of any worker sums them all.
        self.multiprocess_dir = multiprocess_dir
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "thiqa_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "thiqa_http_request_duration_seconds",
            "Time from a request's arrival to the end of its response body.",
            ["method", "route"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.verifications = Counter(
            "thiqa_verifications",
            "Verdicts given, by result (valid or invalid).",
            ["result"],
            registry=self.registry,
        )
        self.verification_errors = Counter(
            "thiqa_verification_errors",
            "Failures found in verdicts, by code.",
            ["code"],
            registry=self.registry,
        )
        self.unaudited = Counter(
            "thiqa_verifications_unaudited",
            "Verdicts not written to the audit trail because the issuer's signature did not "
            "hold (garbage or forged presentations: nothing in them can be attributed).",
            registry=self.registry,
        )
        self.store_errors = Counter(
            "thiqa_store_unavailable",
            "Requests answered 503 because Redis could not answer (StoreUnavailable).",
            registry=self.registry,
        )
        self.audit_failures = Counter(
            "thiqa_audit_write_failures",
            "Audit entries that could not be written.",
            registry=self.registry,
        )

        self.keyring_degraded = Gauge(
            "thiqa_keyring_degraded",
            "1 while this process cannot do all keyring.json asks (a key file it cannot load, "
            "an index it cannot read): a revocation is applied, but nothing may be signed.",
            registry=self.registry,
            # Several workers: 1 if any live worker last saw its ring degraded.
            multiprocess_mode="livemax",
        )
        self._keyring_degraded: Callable[[], bool] | None = None
        self._request_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._valid = self.verifications.labels("valid")
        self._invalid = self.verifications.labels("invalid")

    def follow_keyring(self, degraded: Callable[[], bool]) -> None:
        """Read at each scrape, so the gauge is never stale. A set value, not set_function:
        in multiprocess mode only values written to the shared files reach the scrape."""
        self._keyring_degraded = degraded

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        # Each label set's children are looked up once: ``labels()`` validates and locks on
        # every call, on the path of every request. Label values are bounded (see above), so
        # is this map.
        children = self._request_children.get((method, route, status))
        if children is None:
            children = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(method, route),
            )
            self._request_children[(method, route, status)] = children
        children[0].inc()
        children[1].observe(seconds)

    def observe_verdict(self, verdict: Verdict | Outcome) -> None:
        """A verdict of POST /v1/verify, or of a wallet's answer to a presentation request."""
        (self._valid if verdict.valid else self._invalid).inc()
        for failure in verdict.failures:
            self.verification_errors.labels(failure.reason.value).inc()

    def render(self) -> bytes:
        if self._keyring_degraded is not None:
            self.keyring_degraded.set(float(self._keyring_degraded()))
        if self.multiprocess_dir is not None:
            whole_group = CollectorRegistry()
            # prometheus_client leaves this constructor unannotated.
            MultiProcessCollector(  # type: ignore[no-untyped-call]
                whole_group, path=self.multiprocess_dir
            )
            return generate_latest(whole_group)
        return generate_latest(self.registry)


async def metrics_dependency(request: Request) -> Metrics:
    return metrics_of(request)


def metrics_of(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


MetricsDep = Annotated[Metrics, Depends(metrics_dependency)]


async def metrics_endpoint(metrics: MetricsDep) -> Response:
    """Prometheus scrape target. Public unless the proxy keeps it in: see README."""
    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)
