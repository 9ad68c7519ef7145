"""/docs and /redoc in a real Chromium with every other host unreachable: the pages, their
bundles and the OpenAPI document all come from Thiqa, under the documentation's policy, and
the operations are drawn. Screenshots go to ``test-artifacts/screenshots/``."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route

from service.api.headers import DOCS_CSP
from service.api.server import BackgroundServer
from tests.web.test_demo_page import _shot, browser, needs_browser

REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"

__all__ = ["browser"]  # the module-scoped Chromium fixture, shared with the demo's tests


@pytest.fixture
def offline_page(browser: Browser, server: BackgroundServer) -> Iterator[tuple[Page, list[str]]]:
    """A page whose every request to another origin is refused, as on a closed network;
    the refused URLs and console errors (a CSP violation among them) are collected."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(20_000)
    own = urlsplit(server.url).netloc
    problems: list[str] = []

    def only_this_server(route: Route) -> None:
        if urlsplit(route.request.url).netloc == own:
            route.continue_()
        else:
            problems.append(f"blocked: {route.request.url}")
            route.abort("internetdisconnected")

    context.route("**/*", only_this_server)
    page = context.new_page()
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
    yield page, problems
    context.close()


def _operations(server: BackgroundServer) -> list[tuple[str, str]]:
    spec = httpx.get(f"{server.url}/openapi.json", timeout=10).json()
    return [
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in item
        if method in {"get", "post", "put", "delete", "patch"}
    ]


@needs_browser
def test_swagger_ui_renders_every_operation_offline(
    offline_page: tuple[Page, list[str]], server: BackgroundServer
) -> None:
    page, problems = offline_page
    response = page.goto(f"{server.url}/docs")
    assert response is not None
    assert response.headers["content-security-policy"] == DOCS_CSP
    page.wait_for_selector(".opblock")
    drawn = page.eval_on_selector_all(
        ".opblock",
        "blocks => blocks.map(b => [b.querySelector('.opblock-summary-method').innerText,"
        " b.querySelector('.opblock-summary-path').getAttribute('data-path')])",
    )
    assert sorted(tuple(op) for op in drawn) == sorted(_operations(server))
    assert page.inner_text(".info .title").startswith("Thiqa")
    _shot(page, "docs-swagger-ui.png")
    assert problems == []


@needs_browser
def test_redoc_renders_every_operation_offline(
    offline_page: tuple[Page, list[str]], server: BackgroundServer
) -> None:
    page, problems = offline_page
    response = page.goto(f"{server.url}/redoc")
    assert response is not None
    assert response.headers["content-security-policy"] == DOCS_CSP
    page.wait_for_selector("[data-section-id^='tag/'] >> nth=0")
    operations = page.eval_on_selector_all(
        "[data-section-id*='/operation/']", "sections => sections.length"
    )
    assert operations == len(_operations(server))
    assert "Thiqa" in page.inner_text("h1")
    _shot(page, "docs-redoc.png")
    # ReDoc draws its maker's logo from a URL written into its bundle (no option turns it
    # off); the policy stops it before any request, and the image hides itself.
    assert [p for p in problems if REDOC_LOGO not in p or "violates" not in p] == []


def test_the_assets_are_served_from_here_and_nothing_else(anonymous: httpx.Client) -> None:
    for name, kind in (
        ("swagger-ui-bundle.js", "text/javascript"),
        ("swagger-ui.css", "text/css"),
        ("redoc.standalone.js", "text/javascript"),
        ("swagger-init.js", "text/javascript"),
        ("favicon.png", "image/png"),
    ):
        answer = anonymous.get(f"/docs/assets/{name}")
        assert answer.status_code == 200, name
        assert answer.headers["content-type"].startswith(kind), name
        assert answer.headers["cache-control"] == "public, max-age=86400"
    for name in ("../app.py", "core.py", "%2e%2e%2fconsts.py", "LICENSE"):
        refused = anonymous.get(f"/docs/assets/{name}")
        assert refused.status_code == 404, name
        assert refused.json()["code"] == "not_found"
    for page in ("/docs", "/redoc"):
        html = anonymous.get(page).text
        assert "http" not in html.replace('lang="en"', ""), "the page names no other host"
        assert "<script>" not in html  # no inline script: every script has a src
