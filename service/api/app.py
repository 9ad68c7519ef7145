"""The FastAPI application: built by :func:`create_app` from one :class:`Settings`."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service import __version__
from service.api.auditing import AuditBatches
from service.api.headers import SecurityHeaders, with_cors
from service.api.limits import BodySizeLimit
from service.api.metrics import Metrics, metrics_endpoint
from service.api.openapi_examples import document_examples
from service.api.openapi_problems import document_problems
from service.api.problems import install_handlers
from service.api.requests import RequestObserver
from service.api.routes import credentials, openid4vp, public, status_lists, verify
from service.api.routes.demo import DEMO_PREFIX, install_demo
from service.api.routes.docs import DOCS_PAGES, install_docs
from service.api.routes.index import install_index
from service.api.routes.openid4vci import OWN_JSON_PATHS, install_openid4vci
from service.api.routes.types import install_type_metadata
from service.api.status_list_lane import StatusListLane
from service.api.verify_access import VerifyAccess
from service.api.verify_lane import VerifyLane
from service.services.runtime import build_runtime, open_keyring
from service.settings import Settings
from service.store.connection import connect

__all__ = ["ThiqaAPI", "create_app"]

DESCRIPTION = """
**Thiqa** (ثقة, "trust") issues digital identity credentials as SD-JWT VC (RFC 9901) and
verifies them for government apps: the issuer's signature, the citizen's proof of holding the
credential (key binding), and its revocation status, kept in Redis.

* Authenticate with an API key: `Authorization: Bearer thq_...` (`thiqa clients add`).
* Errors are RFC 9457 problem details (`application/problem+json`) with a stable `code`.
* Verification answers 200 with a verdict; `valid` is true exactly when `errors` is empty.
"""


def _freeze_heap() -> None:
    """Move everything alive once the app has started (modules, the app, its schemas and
    runtime) out of the garbage collector's reach.

    Python's full collections walk every long-lived object; with the app's hundreds of
    thousands of them, each one stalled the event loop for tens of milliseconds, and every
    request in flight waited: that was most of a verification's p99 under load. Objects
    made later are collected as usual. Not for a process that builds many apps (the tests):
    what is frozen is never freed.
    """
    gc.collect()
    gc.freeze()


class ThiqaAPI(FastAPI):
    """FastAPI with Thiqa's own ASGI layers (:attr:`edge`) in front of it.

    Layers added with ``add_middleware`` run inside Starlette's error and exception
    middleware, so each request would pass those, and their wrappers of ``send``, before
    reaching Thiqa's. Here HTTP requests enter :attr:`edge` first, whose innermost layer is
    :meth:`framework` (FastAPI's own stack): a verification answered by its lane never enters
    FastAPI at all, and every other request gets the same headers, id, log line and limits
    as before. An unhandled exception is still answered as a problem (RequestObserver).
    """

    edge: ASGIApp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope["app"] = self  # as Starlette sets it: request.app in the lanes' handlers
            await self.edge(scope, receive, send)
        else:  # lifespan and websockets
            await super().__call__(scope, receive, send)

    async def framework(self, scope: Scope, receive: Receive, send: Send) -> None:
        """FastAPI's own stack: its error middleware, exception handlers and router."""
        status = 0

        async def tracked(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await super().__call__(scope, receive, tracked)
        except Exception:
            if status != 500:
                raise  # unanswered, or broken mid-answer: RequestObserver logs and answers
            # Starlette's error middleware has answered with the problem (and the handler
            # logged it); it raises again only so that a server may log it: once is enough.


def create_app(
    settings: Settings, *, metrics_dir: str | None = None, freeze_heap: bool = False
) -> ThiqaAPI:
    """The app; ``metrics_dir``: the folder all workers of one server share their metrics
    in (prometheus_client's multiprocess mode), when there are several. ``freeze_heap``: for
    a process that serves this one app (``thiqa serve``), see :func:`_freeze_heap`."""
    if settings.redis_url is None:
        raise ValueError("create_app needs settings.redis_url (the CLI starts an embedded one)")
    redis_url = settings.redis_url.get_secret_value()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = build_runtime(settings, connect(redis_url), open_keyring(settings))
        app.state.runtime = runtime
        app.state.metrics.follow_keyring(lambda: runtime.keys.problem is not None)
        try:
            await runtime.start()  # refuses a Redis that may evict keys
            if freeze_heap:
                _freeze_heap()
            yield
        finally:
            # Every audit entry still pending is written before Redis is closed.
            await app.state.audit_batches.drain()
            await runtime.aclose()

    app = ThiqaAPI(
        title="Thiqa",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        # FastAPI's built-in OpenTelemetry hooks are off: Thiqa reports through its own
        # Prometheus metrics and JSON logs, which never carry exception messages (they can
        # quote a claim), and the hooks' per-request provider lookups cost about a tenth of
        # a verification's CPU.
        telemetry={
            "tracing": False,
            "metrics": False,
            "logs": False,
            "operation_spans": False,
            "auto_configure": False,
        },
        # FastAPI's own pages load Swagger UI and ReDoc from a CDN: Thiqa serves its own
        # (routes/docs.py), which work without internet.
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        openapi_tags=[
            {"name": "credentials", "description": "Issue credentials, change their status."},
            {"name": "verification", "description": "Verify presented credentials."},
            {"name": "public", "description": "Health and issuer metadata; no API key."},
            {
                "name": "wallet issuance",
                "description": "Offer credentials to wallets over "
                "OpenID4VCI 1.0 (pre-authorized code flow). The wallet-facing endpoints answer "
                'OAuth 2.0 errors (`{"error", "error_description"}`), not problem details.',
            },
            {
                "name": "presentation requests",
                "description": "Ask a citizen's wallet for "
                "claims over OpenID4VP 1.0 (DCQL, `direct_post`) and read the verdict. The "
                "wallet-facing response endpoint answers OAuth-style errors, not problem details.",
            },
        ],
    )
    install_handlers(app)
    document_problems(app, own_json_paths=OWN_JSON_PATHS)
    document_examples(app)
    app.state.metrics = Metrics(multiprocess_dir=metrics_dir)
    app.state.audit_batches = AuditBatches(app.state.metrics)
    app.state.verify_access = VerifyAccess()
    # Thiqa's own layers run in front of FastAPI's, not inside them (see ThiqaAPI), from the
    # outermost in: every answer, a refused body or a CORS preflight included, gets the
    # security headers, a request id, a log line and metrics; then the body limit; innermost,
    # the verification paths and status-list fetches, answered before FastAPI's router (the
    # hot paths; see verify_lane.py and status_list_lane.py).
    edge: ASGIApp = VerifyLane(app.framework, api=app)
    edge = StatusListLane(edge, api=app)
    edge = BodySizeLimit(
        edge,
        max_bytes=settings.max_body_bytes,
        own_json_paths=OWN_JSON_PATHS,
        # Up to 100 presentations: the batch route has a limit of its own.
        path_limits={"/v1/verify/batch": max(settings.max_body_bytes, verify.BATCH_BODY_BYTES)},
    )
    edge = with_cors(edge, settings.cors_origin_list)
    edge = RequestObserver(edge, metrics=app.state.metrics)
    app.edge = SecurityHeaders(
        edge, docs=DOCS_PAGES, demo=DEMO_PREFIX if settings.demo_ui else None
    )
    install_docs(app)
    install_index(app, settings)
    # Operators keep /metrics away from the public (README, Operations); not API surface.
    app.add_api_route("/metrics", metrics_endpoint, methods=["GET"], include_in_schema=False)
    app.include_router(public.router)
    metadata_paths = {
        "/.well-known/jwt-vc-issuer",
        public.issuer_metadata_path(settings.issuer_url),
    }
    for path in sorted(metadata_paths):
        app.add_api_route(
            path,
            public.jwt_vc_issuer,
            methods=["GET"],
            tags=["public"],
            summary="Issuer metadata (SD-JWT VC)",
        )
    app.include_router(status_lists.router)
    install_type_metadata(
        app, settings.national_id_vct, settings.national_id_vct.removeprefix(settings.issuer_url)
    )
    app.include_router(credentials.router)
    app.include_router(verify.router)
    install_openid4vci(app, settings)
    app.include_router(openid4vp.relying_party)
    app.include_router(openid4vp.wallet)
    if settings.demo_ui:
        install_demo(app, settings)
    return app
