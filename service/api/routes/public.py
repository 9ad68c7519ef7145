"""Public endpoints: health, readiness and the issuer's metadata."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Response

from ..deps import RuntimeDep
from ..problems import problem

router = APIRouter(tags=["public"])


@router.get("/health")
async def health() -> dict[str, str]:
    """Liveness: the process answers. Says nothing about Redis (see `/ready`)."""
    return {"status": "ok"}


@router.get("/ready", responses={503: {"description": "`store_unavailable`"}})
async def ready(runtime: RuntimeDep) -> Any:
    """Readiness: 200 when Redis answers, 503 otherwise (take the instance out of rotation)."""
    if await runtime.ready():
        return {"status": "ready"}
    return problem(503, "store_unavailable", "The status store cannot answer")


def issuer_metadata_path(issuer_url: str) -> str:
    """SD-JWT VC §5: the well-known segment goes between the host and the issuer's path."""
    return "/.well-known/jwt-vc-issuer" + urlsplit(issuer_url).path.rstrip("/")


async def jwt_vc_issuer(runtime: RuntimeDep, response: Response) -> dict[str, Any]:
    """The issuer's public keys (JWKS), so any verifier can check Thiqa credentials."""
    response.headers["Cache-Control"] = "public, max-age=300"
    return {"issuer": runtime.settings.issuer_url, "jwks": runtime.keyring.jwks()}
