"""The API documentation pages, served whole from this server: ``/docs`` (Swagger UI) and
``/redoc`` (ReDoc) work on a closed network, under a policy that lets them load scripts,
styles and the OpenAPI document from this origin only.

The Swagger UI and ReDoc bundles are the ones the ``fastapi-offline`` package ships (Swagger
UI: Apache-2.0; ReDoc: MIT; the package: MIT), so they are upgraded like any dependency, not
copied into this repository. The pages and Swagger UI's start script are Thiqa's own files
(``service/web/docs/``): FastAPI's built-in pages start Swagger UI with an inline script and
load both from a CDN.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse, HTMLResponse

__all__ = ["ASSETS_PREFIX", "DOCS_PAGES", "install_docs"]

ASSETS_PREFIX = "/docs/assets"
_OWN = Path(__file__).resolve().parents[2] / "web" / "docs"
_BUNDLED = Path(str(files("fastapi_offline") / "static"))

#: Every asset the pages load, by name: nothing else under /docs/assets is served.
_ASSETS: dict[str, tuple[Path, str]] = {
    "swagger-ui-bundle.js": (_BUNDLED / "swagger-ui-bundle.js", "text/javascript"),
    "swagger-ui.css": (_BUNDLED / "swagger-ui.css", "text/css"),
    "redoc.standalone.js": (_BUNDLED / "redoc.standalone.js", "text/javascript"),
    "favicon.png": (_BUNDLED / "favicon.png", "image/png"),
    "swagger-init.js": (_OWN / "swagger-init.js", "text/javascript"),
}
#: The HTML pages, which get the documentation's content security policy (api/headers.py).
DOCS_PAGES = {"/docs": _OWN / "swagger.html", "/redoc": _OWN / "redoc.html"}
#: Assets change only with a new Thiqa; a day of caching spares reloading 2.8 MB of bundles.
_ASSET_CACHE = "public, max-age=86400"


def install_docs(app: FastAPI) -> None:
    """Add /docs, /redoc and their assets. The app must be built with ``docs_url=None`` and
    ``redoc_url=None`` so FastAPI's CDN pages are not served too."""
    pages = {path: file.read_text(encoding="utf-8") for path, file in DOCS_PAGES.items()}

    def page(path: str) -> Callable[[], Awaitable[HTMLResponse]]:  # one endpoint per page
        async def endpoint() -> HTMLResponse:
            return HTMLResponse(pages[path])

        return endpoint

    for path in DOCS_PAGES:
        app.add_api_route(path, page(path), methods=["GET"], include_in_schema=False)

    async def asset(name: str) -> FileResponse:
        found = _ASSETS.get(name)
        if found is None:
            raise HTTPException(status_code=404)
        file, media_type = found
        return FileResponse(file, media_type=media_type, headers={"Cache-Control": _ASSET_CACHE})

    app.add_api_route(f"{ASSETS_PREFIX}/{{name}}", asset, methods=["GET"], include_in_schema=False)
