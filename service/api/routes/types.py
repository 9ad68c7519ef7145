"""SD-JWT VC Type Metadata (draft-ietf-oauth-sd-jwt-vc §6) served at the type's own ``vct``.

A wallet or verifier that resolves Thiqa's ``vct`` URL learns how to show the credential: its
name and each claim's label in Arabic, French and English, and that every claim is always
selectively disclosable. The document is ``service.services.type_metadata``'s.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import JSONResponse

from service.services.type_metadata import national_id_metadata

__all__ = ["install_type_metadata"]


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
