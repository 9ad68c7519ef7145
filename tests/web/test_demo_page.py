"""The browser demo at /demo, driven in a real headless Chromium against a live Thiqa.

For Arabic, French and English the whole trusted verification flow runs through the page as
a tester would click it: the issuer console offers a credential with a PIN, the page's own
wallet collects it over OpenID4VCI (WebCrypto key, proof JWT), the verifier console asks for
claims, the wallet presents them over OpenID4VP (SD-JWT with a KB-JWT, direct_post) and the
verdict arrives on the verifier's screen; then the issuer revokes and a new presentation is
judged revoked. Nothing is mocked: real browser, real HTTP, real Redis, real crypto.

The browser is Debian's ``/usr/bin/chromium`` (Playwright's own downloads are never used).
Without it the browser tests skip on a developer machine, but never under CI (``CI`` set),
where ``.ci/run`` installs it: a missing browser there is a failure, not a silent pass.
Screenshots go to ``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import redis
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from service.api.headers import DEMO_CSP
from service.api.server import BackgroundServer
from service.cli.demo import load_citizens
from service.core import holder, jws
from service.core.encoding import b64url_decode
from service.core.jwe import decrypt_response, encrypt_response
from service.core.keys import generate_signing_key, public_jwk
from service.core.x509 import certificate_hash, parse_x5c, validate_chain
from service.keyring.certificates import Pki
from service.settings import Settings
from service.store.clients import Scope
from service.store.connection import KeySpace
from tests.conftest import add_client

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
TIMEOUT_MS = 10_000

needs_browser = pytest.mark.skipif(
    not CHROMIUM.exists() and not os.environ.get("CI"),
    reason="/usr/bin/chromium is not installed (apt-get install chromium); CI always runs this",
)

#: What the verifier asks for: names in both scripts and one nested claim, so the wallet
#: must send the parent's disclosure (place_of_birth) along with the child's.
REQUESTED = (
    "given_name",
    "given_name#ar",
    "family_name",
    "family_name#ar",
    "place_of_birth.locality#ar",
)
#: Disclosed by the tester on top of the request; the verdict must still hold only REQUESTED.
EXTRA = "birthdate"

#: The consent list in the type metadata's order: Place of birth heads its members.
CONSENT_ORDER = [
    "given_name",
    "given_name#ar",
    "family_name",
    "family_name#ar",
    "birthdate",
    "group:place_of_birth",
    "place_of_birth.locality",
    "place_of_birth.locality#ar",
    "place_of_birth.country",
    "sex",
    "national_id",
    "nationality",
]
#: What the page says for a wallet card's credential and for the `revoked` code.
ACTIVE = {"ar": "سارية", "fr": "Active", "en": "Active"}
REVOKED_MEANS = {
    "ar": "أُلغيت الوثيقة.",
    "fr": "L'attestation a été révoquée.",
    "en": "The credential has been revoked.",
}

#: Words the page must show in each language (its own strings, and labels from the vct's
#: type metadata), checked against what is on screen.
EXPECTED = {
    "ar": {
        "issuer": "منصة الجهة المُصدِرة",
        "wallet": "محفظة المتصفح",
        "api_key": "مفتاح الواجهة البرمجية",
        "wallet_pin": "الرمز السري (إن وُجد)",
        "verifier": "منصة جهة التحقق",
        "valid": "صالح",
        "invalid": "غير صالح",
        "revoked": "ملغاة",
        "given_name": "الاسم الشخصي (بالحروف اللاتينية)",
        "locality#ar": "المدينة",
    },
    "fr": {
        "issuer": "Console de l'émetteur",
        "wallet": "Portefeuille du navigateur",
        "api_key": "Clé d'API",
        "wallet_pin": "Code PIN (si l'offre en a un)",
        "verifier": "Console du vérificateur",
        "valid": "Valide",
        "invalid": "Non valide",
        "revoked": "Révoquée",
        "given_name": "Prénom",
        "locality#ar": "Localité (en arabe)",
    },
    "en": {
        "issuer": "Issuer console",
        "wallet": "Browser wallet",
        "api_key": "API key",
        "wallet_pin": "PIN (if the offer has one)",
        "verifier": "Verifier console",
        "valid": "Valid",
        "invalid": "Not valid",
        "revoked": "Revoked",
        "given_name": "Given name",
        "locality#ar": "Locality (Arabic)",
    },
}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    # A fresh context per test: its own sessionStorage and IndexedDB, so an empty wallet.
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(TIMEOUT_MS)
    opened = context.new_page()
    problems: list[str] = []
    # A CSP violation, an uncaught exception or a failed load shows up here: the page must
    # run under its strict policy without tripping it.
    opened.on("console", lambda m: _keep_errors(m, problems))
    opened.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
    yield opened
    context.close()
    assert not problems, problems


def _keep_errors(message: ConsoleMessage, problems: list[str]) -> None:
    # Chromium logs every non-2xx fetch as a console error; a refused presentation (400) is
    # part of the flow, so only other errors count.
    if message.type == "error" and "Failed to load resource" not in message.text:
        problems.append(message.text)


def _api_key(settings: Settings, name: str) -> str:
    # Playwright's sync API keeps an event loop running on this thread, where add_client's
    # asyncio.run may not start another: make the key on a thread of its own.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(add_client, settings, name, frozenset(Scope)).result()


def _shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True)


def _disclosed_names(vp_token: str) -> set[str]:
    """Claim names the wallet's presentation discloses (the KB-JWT is the last part)."""
    presentation = json.loads(vp_token)["credential"][0]
    parts = presentation.split("~")
    assert parts[-1].count(".") == 2, "a KB-JWT ends the presentation"
    kb_header = json.loads(b64url_decode(parts[-1].split(".")[0]))
    assert kb_header["typ"] == "kb+jwt"
    return {json.loads(b64url_decode(d))[1] for d in parts[1:-1]}


def _decrypted_vp_token(settings: Settings, response_url: str, jwe: str) -> str:
    """The vp_token inside the browser's encrypted answer, opened with the request's own
    ephemeral key as Thiqa keeps it (the test reads it from Redis, as the server does)."""
    assert settings.redis_url is not None
    request_id = response_url.rstrip("/").rsplit("/", 1)[1]
    client = redis.Redis.from_url(settings.redis_url.get_secret_value())
    try:
        options = client.hget(
            KeySpace(settings.redis_prefix).presentation_request(request_id), "options"
        )
    finally:
        client.close()
    assert options is not None
    key = json.loads(options)["encryption_key"]
    return json.dumps(decrypt_response(jwe, private_jwk=key)["vp_token"])


def _present(page: Page, *, extra: str | None, settings: Settings) -> set[str]:
    """Send the verifier's request to the wallet, share, and return what was disclosed."""
    page.click("#send-request-to-wallet")
    page.wait_for_selector("#wallet-consent:not([hidden])")
    rows = page.eval_on_selector_all(
        "#consent-claims li",
        "rows => rows.map(r => r.dataset.group ? 'group:' + r.dataset.group"
        " : r.querySelector('input').dataset.path)",
    )
    assert rows == CONSENT_ORDER, "ordered and nested as the type metadata says"
    nested = page.eval_on_selector_all(
        "#consent-claims li.nested input", "boxes => boxes.map(b => b.dataset.path)"
    )
    assert nested == [row for row in CONSENT_ORDER if row.startswith("place_of_birth.")]
    checked = page.eval_on_selector_all(
        "#consent-claims input:checked", "boxes => boxes.map(b => b.dataset.path)"
    )
    assert set(checked) == set(REQUESTED), "the wallet pre-checks exactly what was asked"
    if extra:
        page.check(f'#consent-claims input[data-path="{extra}"]')
    with page.expect_request(lambda r: "/presentation-responses/" in r.url) as sent:
        page.click("#wallet-present")
    form = parse_qs(sent.value.post_data or "")
    # HAIP: the answer is encrypted (direct_post.jwt); nothing but the JWE goes in the clear.
    assert set(form) == {"response"}
    return _disclosed_names(_decrypted_vp_token(settings, sent.value.url, form["response"][0]))


def _ask(page: Page) -> None:
    for box in page.query_selector_all("#verifier-claims input"):
        wanted = box.get_attribute("data-path") in REQUESTED
        if box.is_checked() != wanted:
            box.click()
    page.click("#create-request")
    page.wait_for_selector('#verdict[data-state="pending"]')


@needs_browser
@pytest.mark.parametrize("lang", ["ar", "fr", "en"])
def test_issue_present_verify_revoke_in_the_browser(
    lang: str, page: Page, server: BackgroundServer, settings: Settings
) -> None:
    key = _api_key(settings, f"demo-{lang}")
    words = EXPECTED[lang]
    citizen = load_citizens()[0]

    page.goto(f"{server.url}/demo")
    page.wait_for_selector('body[data-ready="true"]')
    page.select_option("#lang", lang)
    html = page.locator("html")
    assert html.get_attribute("lang") == lang
    assert html.get_attribute("dir") == ("rtl" if lang == "ar" else "ltr")
    assert page.inner_text("#issuer-heading") == words["issuer"]
    assert page.inner_text("#wallet-heading") == words["wallet"]
    assert page.inner_text("#verifier-heading") == words["verifier"]
    assert page.inner_text('label[for="api-key"]') == words["api_key"]
    assert page.inner_text('label[for="wallet-pin"]') == words["wallet_pin"]

    # Issuer console: an offer with a PIN for the first synthetic citizen.
    page.fill("#api-key", key)
    page.select_option("#citizen", "0")
    page.check("#with-pin")
    page.click("#create-offer")
    page.wait_for_selector("#offer:not([hidden])")
    pin = page.text_content("#offer-pin") or ""
    assert re.fullmatch(f"[0-9]{{{settings.tx_code_length}}}", pin)
    assert (page.get_attribute("#offer-qr", "src") or "").startswith("data:image/svg+xml")
    assert page.input_value("#offer-uri").startswith(
        "openid-credential-offer://?credential_offer_uri="
    )
    _shot(page, f"demo-{lang}-offer.png")

    # The wallet collects it, with the PIN typed in.
    page.click("#send-to-wallet")
    page.fill("#wallet-pin", pin)
    page.click("#wallet-accept")
    card = page.wait_for_selector("#wallet-credentials li[data-credential]")
    status = page.wait_for_selector('#wallet-credentials .wallet-status[data-status="valid"]')
    assert status.inner_text() == ACTIVE[lang]
    names = card.inner_text()
    assert citizen["given_name"] in names
    assert citizen["given_name#ar"] in names
    page.wait_for_selector('#credential-status[data-status="valid"]')
    credential_id = page.text_content("#credential-id")
    assert credential_id

    # Verifier console asks; the wallet shares the request and one more claim.
    _ask(page)
    disclosed = _present(page, extra=EXTRA, settings=settings)
    # The parent's disclosure goes along with the nested claim; nothing unchosen does.
    assert disclosed == {
        "given_name",
        "given_name#ar",
        "family_name",
        "family_name#ar",
        "place_of_birth",
        "locality#ar",
        EXTRA,
    }
    verdict = page.wait_for_selector('#verdict[data-state="completed"]')
    assert verdict.get_attribute("data-valid") == "true"
    assert verdict.get_attribute("data-status") == "valid"
    rows = page.eval_on_selector_all("#verdict-claims tr", "rows => rows.map(r => r.dataset.path)")
    assert sorted(rows) == sorted(REQUESTED), "exactly the requested claims, not the extra"
    assert words["valid"] in page.inner_text("#verdict-summary")
    assert page.inner_text('#verdict-claims tr[data-path="given_name"] th') == words["given_name"]
    assert page.inner_text('#verdict-claims tr[data-path="given_name"] td') == citizen["given_name"]
    assert (
        page.inner_text('#verdict-claims tr[data-path="given_name#ar"] td')
        == citizen["given_name#ar"]
    )
    assert (
        page.inner_text('#verdict-claims tr[data-path="place_of_birth.locality#ar"] th')
        == words["locality#ar"]
    )
    _shot(page, f"demo-{lang}-verdict.png")

    # The issuer revokes; the next presentation of the same credential is judged revoked.
    page.click("#revoke")
    page.wait_for_selector('#credential-status[data-status="revoked"]')
    assert page.inner_text("#credential-status") == words["revoked"]
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}) as api:
        assert api.get(f"/v1/credentials/{credential_id}").json()["status"] == "revoked"
    _ask(page)
    _present(page, extra=None, settings=settings)
    verdict = page.wait_for_selector('#verdict[data-state="failed"]')
    assert verdict.get_attribute("data-valid") == "false"
    assert verdict.get_attribute("data-status") == "revoked"
    assert page.query_selector('#verdict-errors li[data-code="revoked"]') is not None
    assert page.query_selector_all("#verdict-claims tr") == []
    assert words["invalid"] in page.inner_text("#verdict-summary")
    assert page.inner_text("#verdict-status") == words["revoked"]
    # The server's code, explained in the page's language.
    assert page.inner_text('#verdict-errors li[data-code="revoked"]') == (
        f"revoked — {REVOKED_MEANS[lang]}"
    )
    # The wallet's card reads the status list too, and says so.
    revoked = page.wait_for_selector('#wallet-credentials .wallet-status[data-status="revoked"]')
    assert revoked.inner_text() == words["revoked"]
    assert "thiqa clients add demo --scopes issue,revoke,verify" in page.inner_text(
        "#api-key-command"
    )
    _shot(page, f"demo-{lang}-revoked.png")


@needs_browser
def test_keyboard_only_offer_wrong_pin_refused_and_offer_without_pin(
    page: Page, server: BackgroundServer, settings: Settings
) -> None:
    key = _api_key(settings, "demo-keys")
    page.goto(f"{server.url}/demo/?lang=en")
    page.wait_for_selector('body[data-ready="true"]')
    page.fill("#api-key", key)

    # Keyboard only: from the citizen list, Tab to the PIN box and the button, Enter.
    page.focus("#citizen")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "with-pin"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "create-offer"
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") == "solid"
    page.keyboard.press("Enter")
    page.wait_for_selector("#offer:not([hidden])")
    pin = page.text_content("#offer-pin") or ""
    wrong = ("1" if pin[0] == "0" else "0") + pin[1:]

    page.click("#send-to-wallet")
    assert page.evaluate("document.activeElement.id") == "wallet-pin"
    page.keyboard.type(wrong)
    page.click("#wallet-accept")
    message = page.wait_for_selector("#wallet-message.error")
    assert "invalid_grant" in message.inner_text()
    assert page.query_selector("#wallet-credentials li[data-credential]") is None

    # The issuer makes a new offer without a PIN: the wallet takes it as it is.
    page.uncheck("#with-pin")
    page.click("#create-offer")
    page.wait_for_selector("#offer-pin-box[hidden]", state="attached")
    page.click("#send-to-wallet")
    page.click("#wallet-accept")
    page.wait_for_selector("#wallet-credentials li[data-credential]")
    page.wait_for_selector('#credential-status[data-status="valid"]')
    assert page.is_disabled("#reinstate")
    assert page.is_enabled("#suspend")
    page.click("#suspend")
    page.wait_for_selector('#credential-status[data-status="suspended"]')
    assert page.is_enabled("#reinstate")
    assert page.is_disabled("#suspend")


# -- without a browser: what the server sends ----------------------------------------------


def test_demo_pages_have_a_strict_policy(anonymous: httpx.Client) -> None:
    first = anonymous.get("/demo")
    assert first.status_code == 308
    assert first.headers["location"] == "demo/"
    for path, media in (
        ("/demo/", "text/html"),
        ("/demo/demo.js", "text/javascript"),
        ("/demo/demo.css", "text/css"),
    ):
        answer = anonymous.get(path)
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith(media)
        assert answer.headers["content-security-policy"] == DEMO_CSP
        assert answer.headers["x-frame-options"] == "DENY"
    assert "'unsafe-inline'" not in DEMO_CSP
    assert "http" not in DEMO_CSP
    html = anonymous.get("/demo/").text
    assert "<script>" not in html, "no inline script: the CSP would block it"
    assert " style=" not in html, "no inline style: the CSP would block it"
    # The API keeps its own policy, stricter still.
    assert (
        anonymous.get("/health")
        .headers["content-security-policy"]
        .startswith("default-src 'none'; frame-ancestors")
    )


def test_demo_serves_only_the_synthetic_seeds_and_where_the_server_is(
    anonymous: httpx.Client, settings: Settings
) -> None:
    citizens = anonymous.get("/demo/citizens.json").json()["citizens"]
    assert citizens == load_citizens()
    config = anonymous.get("/demo/config.json").json()
    access = Pki(settings.keys_dir).load_access(host="127.0.0.1", now=int(time.time()))
    # The browser wallet pins the server's own access certificate (public parts only).
    assert config == {
        "issuer": settings.issuer_url,
        "vct": settings.national_id_vct,
        "access": {"x509_hash": certificate_hash(access.leaf), "jwk": public_jwk(access.key.key)},
    }


def test_demo_ui_off_serves_nothing(settings: Settings) -> None:
    off = settings.model_copy(update={"demo_ui": False})
    with BackgroundServer(off) as running, httpx.Client(base_url=running.url) as client:
        for path in ("/demo", "/demo/", "/demo/demo.js", "/demo/citizens.json"):
            assert client.get(path).status_code == 404
        assert client.get("/health").status_code == 200


@needs_browser
def test_verifier_uses_the_digital_credentials_api_when_the_browser_offers_it(
    page: Page, server: BackgroundServer, settings: Settings
) -> None:
    """A browser that offers ``navigator.credentials.get`` with a digital request: the console
    sends a signed ``dc_api.jwt`` request through it (no QR code) and hands the answer to
    Thiqa. The browser's wallet is simulated by the test: it checks the request's signature
    against the server's root and answers as a wallet would, encrypted, bound to the
    page's origin."""
    key = _api_key(settings, "demo-dc-api")
    holder_key = generate_signing_key()
    citizen = load_citizens()[0]
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}) as api:
        issued = api.post(
            "/v1/credentials",
            json={"claims": citizen, "holder_jwk": public_jwk(holder_key.key)},
        )
    assert issued.status_code == 201, issued.text
    credential = issued.json()["credential"]
    seen: list[dict[str, Any]] = []

    def simulated_wallet(entry_json: str) -> str:
        entry = json.loads(entry_json)
        seen.append(entry)
        token = jws.parse(entry["data"]["request"], typ=frozenset({"oauth-authz-req+jwt"}))
        validated = validate_chain(
            parse_x5c(token.header["x5c"]),
            anchors=[Pki(settings.keys_dir).root()],
            now=int(time.time()),
        )
        validated.verification_key().verify(token.signature, token.signing_input)  # or raises
        claims = token.payload
        assert claims["expected_origins"] == [server.url]
        paths = [tuple(q["path"]) for q in claims["dcql_query"]["credentials"][0]["claims"]]
        presentation = holder.present(
            credential,
            paths,
            holder_key=holder_key,
            nonce=claims["nonce"],
            audience=f"origin:{server.url}",
            now=int(time.time()),
        )
        (encryption_key,) = claims["client_metadata"]["jwks"]["keys"]
        response = encrypt_response(
            {"vp_token": {"credential": [presentation]}}, public_jwk=encryption_key
        )
        return json.dumps({"response": response})

    page.expose_function("simulatedWallet", simulated_wallet)
    page.add_init_script(
        """
        window.DigitalCredential = class DigitalCredential {};
        Object.defineProperty(navigator.credentials, "get", {
          value: async (options) => {
            const entry = options.digital.requests[0];
            const data = JSON.parse(await window.simulatedWallet(JSON.stringify(entry)));
            return { protocol: entry.protocol, data };
          },
        });
        """
    )
    page.goto(f"{server.url}/demo")
    page.wait_for_selector('body[data-ready="true"]')
    page.select_option("#lang", "en")
    page.fill("#api-key", key)
    for box in page.query_selector_all("#verifier-claims input"):
        wanted = box.get_attribute("data-path") in ("given_name", "family_name")
        if box.is_checked() != wanted:
            box.click()
    page.click("#create-dc-request")  # shown only because the browser offers the API
    verdict = page.wait_for_selector('#verdict[data-state="completed"]')
    assert verdict.get_attribute("data-valid") == "true"
    assert page.is_hidden("#request")  # no QR code: the browser carried the request
    (entry,) = seen
    assert entry["protocol"] == "openid4vp-v1-signed"
    rows = page.eval_on_selector_all("#verdict-claims tr", "rows => rows.map(r => r.dataset.path)")
    assert sorted(rows) == ["family_name", "given_name"]
