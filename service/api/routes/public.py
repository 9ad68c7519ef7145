"""Public endpoints: health, readiness and the issuer's metadata."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Response

from service.api.deps import RuntimeDep
from service.api.problems import Problem, problem_response
from service.api.schemas import Health, IssuerMetadata, Readiness
from service.errors import KeyRingUnavailable, StoreUnavailable

router = APIRouter(tags=["public"])


@router.get("/health", response_model=Health, summary="Liveness")
async def health() -> Health:
    """Liveness: the process answers. Says nothing about Redis (see `/ready`)."""
    return Health(status="ok")


@router.get(
    "/ready",
    response_model=Readiness,
    summary="Readiness",
    responses={
        503: {
            "model": Problem,
            "description": "`store_unavailable`: Redis cannot answer. `keyring_unavailable`: "
            "this process cannot do all `keyring.json` asks (a key file it cannot load, an "
            "index it cannot read); revocations still apply, but it may sign nothing.",
        }
    },
)
async def ready(runtime: RuntimeDep) -> Any:
    """Readiness: 200 when Redis answers and the key ring is loaded as `keys/` says, 503
    otherwise (take the instance out of rotation)."""
    if runtime.keys.problem is not None:
        return problem_response(
            KeyRingUnavailable("A key file or the key index cannot be loaded (see the logs).")
        )
    if await runtime.ready():
        return Readiness(status="ready")
    # Answered here, not raised: a readiness probe is not a request that failed.
    return problem_response(StoreUnavailable())


def issuer_metadata_path(issuer_url: str) -> str:
    """SD-JWT VC §5: the well-known segment goes between the host and the issuer's path."""
    return "/.well-known/jwt-vc-issuer" + urlsplit(issuer_url).path.rstrip("/")


async def jwt_vc_issuer(runtime: RuntimeDep, response: Response) -> IssuerMetadata:
    """The issuer's public keys (JWKS), so any verifier can check Thiqa credentials."""
    response.headers["Cache-Control"] = "public, max-age=300"
    return IssuerMetadata.model_validate(
        {"issuer": runtime.settings.issuer_url, "jwks": runtime.keyring.jwks()}
    )
