"""SD-JWT VC Type Metadata (draft-ietf-oauth-sd-jwt-vc §6) served at the type's own ``vct``.

A wallet or verifier that resolves Thiqa's ``vct`` URL learns how to show the credential: its
name and each claim's label in Arabic, French and English, and that every claim is always
selectively disclosable. The document is loaded once, at start.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import JSONResponse

__all__ = ["install_type_metadata", "national_id_metadata"]


@cache
def _document() -> dict[str, Any]:
    text = resources.files("service").joinpath("metadata/national-id.json").read_text("utf-8")
    return json.loads(text)


#: What the document holds, for the API documentation (the document itself is
#: ``service/metadata/national-id.json``).
_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["vct", "name", "display", "claims"],
    "properties": {
        "vct": {"type": "string"},
        "name": {"type": "string"},
        "description": {"type": "string"},
        "display": {
            "type": "array",
            "items": {"type": "object"},
            "description": "The type's name and description per locale.",
        },
        "claims": {
            "type": "array",
            "items": {"type": "object"},
            "description": "Each claim's `path`, `sd: always` and `display` labels "
            "per locale (ar, fr, en).",
        },
    },
}


def national_id_metadata(vct: str) -> dict[str, Any]:
    return {"vct": vct, **_document()}


def install_type_metadata(app: FastAPI, vct: str, path: str) -> None:
    """Serve the metadata of ``vct`` at ``path`` (the vct URL less the public base URL, which
    a proxy in front may prefix, as for every other route)."""
    body = json.dumps(national_id_metadata(vct), ensure_ascii=False).encode("utf-8")

    async def type_metadata() -> Response:
        """Type Metadata of Thiqa's national identity credential (names and claim labels in
        Arabic, French and English)."""
        return Response(
            body, media_type="application/json", headers={"Cache-Control": "public, max-age=86400"}
        )

    router = APIRouter(tags=["public"])
    router.add_api_route(
        path,
        type_metadata,
        methods=["GET"],
        summary="Credential type metadata",
        response_class=JSONResponse,
        responses={
            200: {
                "description": "SD-JWT VC Type Metadata.",
                "content": {"application/json": {"schema": _SCHEMA}},
            }
        },
    )
    app.include_router(router)
