"""The FastAPI application: built by :func:`create_app` from one :class:`Settings`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from service import __version__
from service.api.auditing import AuditBatches
from service.api.headers import SecurityHeaders, install_cors
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

__all__ = ["create_app"]

DESCRIPTION = """
**Thiqa** (ثقة, "trust") issues digital identity credentials as SD-JWT VC (RFC 9901) and
verifies them for government apps: the issuer's signature, the citizen's proof of holding the
credential (key binding), and its revocation status, kept in Redis.

* Authenticate with an API key: `Authorization: Bearer thq_...` (`thiqa clients add`).
* Errors are RFC 9457 problem details (`application/problem+json`) with a stable `code`.
* Verification answers 200 with a verdict; `valid` is true exactly when `errors` is empty.
"""


def create_app(settings: Settings, *, metrics_dir: str | None = None) -> FastAPI:
    """The app; ``metrics_dir``: the folder all workers of one server share their metrics
    in (prometheus_client's multiprocess mode), when there are several."""
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
            yield
        finally:
            # Every audit entry still pending is written before Redis is closed.
            await app.state.audit_batches.drain()
            await runtime.aclose()

    app = FastAPI(
        title="Thiqa",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
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
    # Innermost: the verification paths and status-list fetches, answered before FastAPI's
    # router (the hot paths; see verify_lane.py and status_list_lane.py).
    app.add_middleware(VerifyLane, api=app)
    app.add_middleware(StatusListLane, api=app)
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_body_bytes,
        own_json_paths=OWN_JSON_PATHS,
        # Up to 100 presentations: the batch route has a limit of its own.
        path_limits={"/v1/verify/batch": max(settings.max_body_bytes, verify.BATCH_BODY_BYTES)},
    )
    # Added last, so outermost: every answer, a refused body or a CORS preflight included,
    # gets a request id, a log line, metrics and the security headers.
    install_cors(app, settings.cors_origin_list)
    app.state.metrics = Metrics(multiprocess_dir=metrics_dir)
    app.state.audit_batches = AuditBatches(app.state.metrics)
    app.state.verify_access = VerifyAccess()
    app.add_middleware(RequestObserver, metrics=app.state.metrics)
    app.add_middleware(
        SecurityHeaders, docs=DOCS_PAGES, demo=DEMO_PREFIX if settings.demo_ui else None
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
