"""What a browser may do with Thiqa's answers: security headers and (closed) CORS.

Every response gets ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer``,
``X-Frame-Options: DENY`` and a Content-Security-Policy; and ``Cache-Control: no-store``
unless the route chose its own caching (published status lists and issuer metadata are meant
to be cached, for their ``ttl``).

The API answers JSON and tokens, which load nothing: ``default-src 'none'; frame-ancestors
'none'``. The documentation pages (``/docs``, ``/redoc``) are HTML that load Swagger UI or
ReDoc, their start script and the OpenAPI document from this origin (routes/docs.py): their
policy allows scripts, styles, images and connections to 'self' only, with no inline script.
Styles alone may also be inline: both renderers set style attributes and insert style
elements as they draw (React and styled-components); a style can change how the page looks,
never run anything.

CORS is closed unless ``THIQA_CORS_ORIGINS`` names origins: without it no
``Access-Control-*`` header is ever sent, so a browser page on another site cannot read an
answer. With it, exactly those origins may call with GET and POST and the headers
``Authorization`` and ``Content-Type``.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["API_CSP", "DEMO_CSP", "DOCS_CSP", "SecurityHeaders", "with_cors"]

API_CSP = "default-src 'none'; frame-ancestors 'none'"
DOCS_CSP = (
    "default-src 'none'; "
    "script-src 'self'; "
    "style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; "
    "font-src 'self'; "
    "connect-src 'self'; "
    "worker-src 'self' blob:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)

# The browser demo (/demo, THIQA_DEMO_UI): its HTML, script and styles are files from this
# origin, its QR codes are data: images of the API's SVG, and it talks to this origin only.
# No inline script or style, no other host: an injected string finds nothing to run.
DEMO_CSP = (
    "default-src 'none'; "
    "script-src 'self'; "
    "style-src 'self'; "
    "img-src 'self' data:; "
    "connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)

_FIXED = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)
_CSP = b"content-security-policy"
#: Set by this layer whatever the route said.
_OURS = frozenset({name for name, _ in _FIXED} | {_CSP})


_API_CSP, _DOCS_CSP, _DEMO_CSP = (p.encode("ascii") for p in (API_CSP, DOCS_CSP, DEMO_CSP))


class SecurityHeaders:
    def __init__(self, app: ASGIApp, *, docs: Iterable[str] = (), demo: str | None = None) -> None:
        self.app = app
        self.docs = frozenset(docs)
        self.demo = demo  # the demo pages' path prefix, when they are served

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if path in self.docs:
            csp = _DOCS_CSP
        elif self.demo and (path == self.demo or path.startswith(self.demo + "/")):
            csp = _DEMO_CSP
        else:
            csp = _API_CSP

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                # The raw header list, not MutableHeaders: this runs on every answer, and
                # MutableHeaders rescans the whole list for each header it sets.
                headers = [(n, v) for n, v in message.get("headers", ()) if n.lower() not in _OURS]
                cached = any(n.lower() == b"cache-control" for n, _ in headers)
                headers.extend(_FIXED)
                headers.append((_CSP, csp))
                if not cached:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def with_cors(app: ASGIApp, origins: Iterable[str]) -> ASGIApp:
    """``app`` open to exactly ``origins`` by CORS; with none, ``app`` itself (no CORS
    headers at all)."""
    allowed = list(origins)
    if not allowed:
        return app
    return CORSMiddleware(
        app,
        allow_origins=allowed,
        allow_methods=["GET", "POST"],
        allow_headers=["Authorization", "Content-Type"],
        expose_headers=["X-Request-ID"],
        allow_credentials=False,
        max_age=600,
    )
