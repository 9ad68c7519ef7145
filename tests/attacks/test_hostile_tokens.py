"""Hostile tokens against the live API: every attack a verifier of SD-JWT VCs is known to face.

Each attack is crafted from a real credential issued by a live Thiqa (real HTTP, real Redis,
the issuer's real key from ``load_keyring`` where the attack needs a correctly signed token)
and sent to ``POST /v1/verify`` with a nonce and audience, as a verifying app would. Every
attack must come back as a verdict with exactly the listed codes, ``valid: false`` and no
claims.

Every presentation carries a correct key-binding JWT over exactly what it presents, so the
code list names only what the attack broke: until the issuer's signature holds the first
failure ends the run (one code); after it, every failure is listed, and the few attacks that
legitimately break two things list two codes, each explained where it is built.

The module shares one live server across the attacks (one per attack would cost a second
each). Each attack also checks that it changed nothing: the attacker's web server (named by
``jku``, ``x5u``, ``iss`` and status URIs) got no request, and Redis holds exactly what it held
before plus the verification's one audit entry (``credential.verified`` with the verdict's
codes and no claim): no other key under the test prefix was created, changed or deleted. A
separate test sends the whole corpus itself and then checks that the server still answers
and a genuine presentation still verifies, so no test depends on which ran before it.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import redis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import NameOID
from jwt.algorithms import HMACAlgorithm

from service.api.server import BackgroundServer, free_port
from service.core.encoding import b64url_decode, b64url_encode, json_dumps
from service.core.keys import SigningKey, generate_signing_key, public_jwk
from service.core.sdjwt import digest, make_disclosure
from service.services.runtime import load_keyring
from service.settings import Settings
from service.store.audit import AuditAction, AuditEntry
from service.store.clients import Scope
from service.store.connection import KeySpace
from tests.conftest import add_client

NONCE = "n-hostile-7Qz"
AUDIENCE = "https://verifier.example.ma"
#: Order of the P-256 group: ECDSA's r and s must lie in [1, N-1].
P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
#: The P-256 field prime: a coordinate >= P is a second spelling of a smaller one.
P256_P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF

CITIZEN = {
    "given_name": "Karim",
    "given_name#ar": "كريم",
    "family_name": "Benali",
    "family_name#ar": "بنعلي",
    "birthdate": "1985-11-02",
    "national_id": "ZZ900417",
    "nationality": "MA",
}


# --- the attacker's web server: it must never be asked for anything ----------------------


class Trap:
    """A web server on 127.0.0.1 offering the attacker's JWKS; it records every request."""

    def __init__(self, jwks: dict[str, Any]) -> None:
        requests: list[str] = []
        body = json.dumps(jwks).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                requests.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the test reads ``requests``; stderr noise helps nobody

        self.requests = requests
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Trap:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


# --- the laboratory: one live Thiqa, its key, a wallet, and real credentials -------------


@dataclass(repr=False)
class Lab:
    http: httpx.Client
    settings: Settings
    issuer: SigningKey
    wallet: SigningKey
    attacker: SigningKey
    credential: str  # issuance form, bound to the wallet
    other: str  # a second credential bound to the same wallet
    revoked: str  # bound to the wallet, revoked before the attacks
    unbound: str  # issued without a holder key
    trap: Trap
    redis: redis.Redis
    #: Every key but the audit stream, as it was before the first attack.
    written_before: dict[bytes, bytes] = field(default_factory=dict)
    #: The request id of the last verification (its audit entry carries it).
    request_id: str = ""

    @property
    def audit_key(self) -> str:
        return KeySpace(self.settings.redis_prefix).audit_verifications()

    @property
    def jwt(self) -> str:
        return self.credential.split("~", 1)[0]

    @property
    def disclosures(self) -> list[str]:
        return _split(self.credential)[1]

    @property
    def header(self) -> dict[str, Any]:
        header: dict[str, Any] = json.loads(b64url_decode(self.jwt.split(".")[0]))
        return header

    @property
    def payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = json.loads(b64url_decode(self.jwt.split(".")[1]))
        return payload

    def resign(
        self,
        change: Callable[[dict[str, Any]], Any] | None = None,
        *,
        header: dict[str, Any] | str | None = None,
        key: SigningKey | None = None,
    ) -> str:
        """The credential's issuer JWT after ``change`` to its payload, signed again (by the
        issuer's own key unless ``key`` says otherwise)."""
        payload = self.payload
        if change is not None:
            change(payload)
        return _sign(header if header is not None else self.header, payload, key or self.issuer)

    def present(
        self,
        jwt: str | None = None,
        disclosures: list[str] | None = None,
        *,
        kb_key: SigningKey | None = None,
        kb_header: dict[str, Any] | None = None,
        kb_claims: dict[str, Any] | None = None,
    ) -> str:
        """``jwt~disclosures~`` with a correct KB-JWT by the wallet over exactly that text."""
        body = (
            (jwt or self.jwt)
            + "~"
            + "".join(d + "~" for d in (self.disclosures if disclosures is None else disclosures))
        )
        key = kb_key or self.wallet
        claims = {
            "iat": int(time.time()),
            "aud": AUDIENCE,
            "nonce": NONCE,
            "sd_hash": digest(body),
            **(kb_claims or {}),
        }
        return body + _sign(kb_header or {"alg": key.alg, "typ": "kb+jwt"}, claims, key)

    def verify(self, presentation: str) -> dict[str, Any]:
        response = self.http.post(
            "/v1/verify",
            json={"credential": presentation, "nonce": NONCE, "audience": AUDIENCE},
        )
        assert response.status_code == 200, response.text
        self.request_id = response.headers["x-request-id"]
        verdict: dict[str, Any] = response.json()
        return verdict

    def verify_audited(self, presentation: str) -> tuple[dict[str, Any], AuditEntry | None]:
        """The verdict and the one audit entry its verification wrote; None, and one more
        in ``thiqa_verifications_unaudited_total``, when the issuer's signature did not hold
        (such a verdict is counted, never audited)."""
        newest = cast("list[tuple[bytes, Any]]", self.redis.xrevrange(self.audit_key, count=1))
        before = newest[0][0] if newest else b"0-0"
        unaudited = self.unaudited()
        verdict = self.verify(presentation)
        if verdict["issuer"] is None:
            assert self.unaudited() == unaudited + 1
            return verdict, None
        assert self.unaudited() == unaudited
        # Entries are written in batches: earlier verifications' may land after ``before``
        # too, so this one's is found by its request id.
        deadline = time.monotonic() + 10
        while True:
            mine = [
                e for e in self.audit_entries_since(before, 1) if e.request_id == self.request_id
            ]
            if mine or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        (entry,) = mine
        return verdict, entry

    def unaudited(self) -> float:
        for line in self.http.get("/metrics").text.splitlines():
            if line.startswith("thiqa_verifications_unaudited_total "):
                return float(line.split()[1])
        return 0.0

    def audit_entries_since(self, entry_id: bytes, count: int) -> list[AuditEntry]:
        """The audit entries after ``entry_id``, once there are ``count`` of them: each
        verification's entry is written after its response, so it may land a little later."""
        deadline = time.monotonic() + 10
        while True:
            entries = cast(
                "list[tuple[bytes, dict[bytes, bytes]]]",
                self.redis.xrange(self.audit_key, min=b"(" + entry_id),
            )
            if len(entries) >= count or time.monotonic() > deadline:
                return [AuditEntry.from_stream(i, f) for i, f in entries]
            time.sleep(0.02)


def _split(credential: str) -> tuple[str, list[str]]:
    jwt, *rest = credential.split("~")
    return jwt, [d for d in rest if d]


def _segment(value: dict[str, Any] | list[Any] | str) -> str:
    """A JWS segment; a str is raw JSON text, for what ``json_dumps`` cannot write."""
    text = value if isinstance(value, str) else json_dumps(value)
    return b64url_encode(text.encode("utf-8"))


def _sign(header: dict[str, Any] | str, payload: dict[str, Any] | str, key: SigningKey) -> str:
    signing_input = f"{_segment(header)}.{_segment(payload)}"
    return f"{signing_input}.{b64url_encode(key.sign(signing_input.encode('ascii')))}"


def _with_signature(jwt: str, signature: bytes) -> str:
    header, payload, _ = jwt.split(".")
    return f"{header}.{payload}.{b64url_encode(signature)}"


def _r_s(jwt: str) -> tuple[int, int]:
    raw = b64url_decode(jwt.split(".")[2])
    return int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")


def _rs_bytes(r: int, s: int) -> bytes:
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def _snapshot(client: redis.Redis, prefix: str) -> dict[bytes, bytes]:
    """Every key under the prefix but the audit streams, with its serialised value (DUMP):
    equal exactly when nothing but the audit trail was written."""
    keys = KeySpace(prefix)
    audit = {keys.audit_stream().encode(), keys.audit_verifications().encode()}
    return {
        key: cast(bytes, client.dump(key))
        for key in client.scan_iter(match=f"{prefix}:*", count=1000)
        if key not in audit
    }


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[Lab]:
    tmp: Path = tmp_path_factory.mktemp("attacks")
    prefix = f"t{secrets.token_hex(6)}"
    settings = Settings(
        redis_url=redis_url,
        keys_dir=tmp / "keys",
        data_dir=tmp / "data",
        redis_prefix=prefix,
        host="127.0.0.1",
        port=free_port(),
        status_list_size=4096,
        # The per-key rate limit counts every request in Redis; off here, so that "nothing
        # was written" covers the whole request path and no attack is answered 429.
        rate_limit_per_minute=0,
    )
    api_key = add_client(settings, "attack-lab", frozenset(Scope))
    wallet = generate_signing_key("ES256")
    attacker = generate_signing_key("ES256")
    attacker_jwks = {"keys": [{**public_jwk(attacker.key), "kid": attacker.kid}]}
    client = redis.Redis.from_url(redis_url)
    try:
        with (
            Trap(attacker_jwks) as trap,
            BackgroundServer(settings) as server,
            httpx.Client(
                base_url=server.url, headers={"Authorization": f"Bearer {api_key}"}, timeout=30
            ) as http,
        ):

            def issue(**extra: Any) -> dict[str, Any]:
                response = http.post("/v1/credentials", json={"claims": CITIZEN, **extra})
                assert response.status_code == 201, response.text
                issued: dict[str, Any] = response.json()
                return issued

            bound = {"holder_jwk": public_jwk(wallet.key)}
            credential, other, revoked = issue(**bound), issue(**bound), issue(**bound)
            unbound = issue()
            response = http.post(f"/v1/credentials/{revoked['credential_id']}/revoke")
            assert response.status_code == 200
            lab = Lab(
                http=http,
                settings=settings,
                issuer=load_keyring(settings).active,
                wallet=wallet,
                attacker=attacker,
                credential=credential["credential"],
                other=other["credential"],
                revoked=revoked["credential"],
                unbound=unbound["credential"],
                trap=trap,
                redis=client,
            )
            # The genuine presentation is valid: every attack below starts from a good token.
            genuine = lab.verify(lab.present())
            assert genuine["valid"] is True, genuine
            # Its audit entry lands after the response: wait for it (the issuances' entries
            # are there already, so counting entries would not wait), then take the baseline.
            deadline = time.monotonic() + 10
            while True:
                (landed,) = lab.audit_entries_since(b"0-0", 1)[-1:]
                if landed.action == AuditAction.CREDENTIAL_VERIFIED:
                    break
                assert time.monotonic() < deadline, landed.action
                time.sleep(0.02)
            lab.written_before = _snapshot(client, prefix)
            yield lab
    finally:
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            client.delete(key)
        client.close()


# --- the attacks -------------------------------------------------------------------------
# Each builder takes the lab and returns the presentation to send.

Builder = Callable[[Lab], str]


#: A header member set to this is left out.
_DROP = object()


def _header(lab: Lab, **changes: Any) -> dict[str, Any]:
    header = {**lab.header, **changes}
    return {k: v for k, v in header.items() if v is not _DROP}


def _alg_none(alg: str, *, signed: bool) -> Builder:
    def build(lab: Lab) -> str:
        _, payload, signature = lab.jwt.split(".")
        forged = f"{_segment(_header(lab, alg=alg))}.{payload}.{signature if signed else ''}"
        return lab.present(forged)

    return build


def _hs256(secret: Callable[[Lab], bytes]) -> Builder:
    """HS256 keyed with the issuer's public key: the classic algorithm confusion. PyJWT's
    ``HMACAlgorithm.sign`` computes the MAC (its ``jwt.encode`` refuses PEM secrets, which is
    the guard this attack hopes a verifier lacks)."""

    def build(lab: Lab) -> str:
        signing_input = f"{_segment(_header(lab, alg='HS256'))}.{_segment(lab.payload)}"
        mac = HMACAlgorithm(HMACAlgorithm.SHA256).sign(signing_input.encode(), secret(lab))
        return lab.present(f"{signing_input}.{b64url_encode(mac)}")

    return build


def _issuer_pem(lab: Lab) -> bytes:
    return lab.issuer.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _issuer_jwk_text(lab: Lab) -> bytes:
    # Exactly the JWK the issuer publishes, as the attacker downloads it.
    jwks = lab.http.get("/.well-known/jwt-vc-issuer").json()["jwks"]["keys"]
    (jwk,) = [k for k in jwks if k["kid"] == lab.issuer.kid]
    return json.dumps(jwk).encode()


def _attacker_cert(lab: Lab) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Thiqa Issuer")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(lab.attacker.key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(lab.attacker.key, hashes.SHA256())
    )
    # x5c is standard base64 (RFC 7515 §4.1.6), not base64url.
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


def _key_header(member: str, *, kid: str) -> Builder:
    """A header naming the attacker's key (``jwk``/``x5c`` inline, ``jku``/``x5u`` by URL on
    the trap server), the token signed by that key. ``kid``: the issuer's (so Thiqa picks
    the issuer's key and the signature fails), the attacker's, or none (no key: unknown)."""

    def build(lab: Lab) -> str:
        value: Any = {
            "jwk": {**public_jwk(lab.attacker.key), "kid": lab.attacker.kid},
            "jku": f"{lab.trap.url}/jwks.json",
            "x5u": f"{lab.trap.url}/cert.pem",
            "x5c": [_attacker_cert(lab)] if member == "x5c" else None,
        }[member]
        chosen = {"issuer": lab.issuer.kid, "attacker": lab.attacker.kid, "none": _DROP}[kid]
        header = _header(lab, kid=chosen, **{member: value})
        return lab.present(_sign(header, lab.payload, lab.attacker))

    return build


def _kid(value: Any) -> Builder:
    return lambda lab: lab.present(lab.resign(header=_header(lab, kid=value)))


def _raw_header(text: Callable[[Lab], str]) -> Builder:
    return lambda lab: lab.present(_sign(text(lab), lab.payload, lab.issuer))


def _raw_payload(text: Callable[[Lab], str]) -> Builder:
    return lambda lab: lab.present(_sign(lab.header, text(lab), lab.issuer))


def _payload_text(lab: Lab, **replace: str) -> str:
    """The payload as JSON text with members replaced by raw JSON (NaN, 1e400...)."""
    payload = lab.payload
    text = json_dumps({k: v for k, v in payload.items() if k not in replace})
    extra = ",".join(f'"{k}":{v}' for k, v in replace.items())
    return text[:-1] + "," + extra + "}"


def _set(name: str, value: Any) -> Builder:
    return lambda lab: lab.present(lab.resign(lambda p: p.__setitem__(name, value)))


def _signature(make: Callable[[int, int, bytes], bytes]) -> Builder:
    """The issuer JWT with its signature replaced by ``make(r, s, raw)`` of the real one."""

    def build(lab: Lab) -> str:
        r, s = _r_s(lab.jwt)
        raw = b64url_decode(lab.jwt.split(".")[2])
        return lab.present(_with_signature(lab.jwt, make(r, s, raw)))

    return build


def _der(r: int, s: int, raw: bytes) -> bytes:
    return encode_dss_signature(r, s)


def _padded_signature(lab: Lab) -> str:
    header, payload, signature = lab.jwt.split(".")
    assert len(signature) % 4 == 2  # 64 bytes: 86 characters, two of padding
    return lab.present(f"{header}.{payload}.{signature}==")


def _padded_payload(lab: Lab) -> str:
    payload = lab.payload
    pad = 0
    while len(_segment(payload)) % 4 == 0:  # make a segment that would need padding
        pad += 1
        payload["x"] = "a" * pad
    header = _segment(lab.header)
    signing_input = f"{header}.{_segment(payload)}="
    # Signed as sent: a verifier that strips the padding would see a valid signature.
    signature = lab.issuer.sign(signing_input.encode())
    return lab.present(f"{signing_input}.{b64url_encode(signature)}")


def _standard_alphabet(lab: Lab) -> str:
    for _ in range(200):
        jwt = lab.resign()
        header, payload, signature = jwt.split(".")
        if "-" in signature or "_" in signature:
            std = signature.replace("-", "+").replace("_", "/")
            return lab.present(f"{header}.{payload}.{std}")
    raise AssertionError("no signature with - or _ in 200 tries")


def _padded_disclosure(lab: Lab) -> str:
    disclosures = lab.disclosures
    first = next(d for d in disclosures if len(d) % 4)
    return lab.present(
        disclosures=[first + "=" * (-len(first) % 4)] + [d for d in disclosures if d != first]
    )


def _json_serialization(general: bool) -> Builder:
    """RFC 9901 §8 JSON serialization, sent where the compact form is expected."""

    def build(lab: Lab) -> str:
        header, payload, signature = lab.jwt.split(".")
        unprotected = {"disclosures": lab.disclosures}
        if general:
            document: dict[str, Any] = {
                "payload": payload,
                "signatures": [
                    {"protected": header, "header": unprotected, "signature": signature}
                ],
            }
        else:
            document = {
                "header": unprotected,
                "payload": payload,
                "protected": header,
                "signature": signature,
            }
        return json.dumps(document)

    return build


def _over_size(lab: Lab) -> str:
    body = lab.credential
    return body + "A" * (lab.settings.max_credential_bytes - len(body)) + "~"


def _at_size(lab: Lab) -> str:
    """Exactly the limit: read, not refused for size (the junk disclosure is what fails)."""
    limit = lab.settings.max_credential_bytes
    probe = lab.present(disclosures=[*lab.disclosures, "AAAA"])
    pad = "A" * (4 + limit - len(probe))
    presentation = lab.present(disclosures=[*lab.disclosures, pad])
    assert len(presentation) == limit
    return presentation


def _nested(depth: int) -> Builder:
    return _raw_payload(lambda lab: _payload_text(lab, x="[" * depth + "]" * depth))


def _cnf(jwk: Callable[[Lab], dict[str, Any]]) -> Builder:
    """A credential the issuer really signed whose holder key is bad; the KB-JWT is signed by
    the wallet. The bad key must be refused, never used or read leniently."""

    def build(lab: Lab) -> str:
        return lab.present(lab.resign(lambda p: p.__setitem__("cnf", {"jwk": jwk(lab)})))

    return build


def _wallet_point(lab: Lab) -> tuple[int, int]:
    assert isinstance(lab.wallet.key, ec.EllipticCurvePrivateKey)
    numbers = lab.wallet.key.public_key().public_numbers()
    return numbers.x, numbers.y


def _ec_jwk(x: int, y: int, crv: str = "P-256", size: int = 32) -> dict[str, Any]:
    return {
        "kty": "EC",
        "crv": crv,
        "x": b64url_encode(x.to_bytes(size, "big")),
        "y": b64url_encode(y.to_bytes(size, "big")),
    }


def _secp256k1_point() -> tuple[int, int]:
    numbers = ec.generate_private_key(ec.SECP256K1()).public_key().public_numbers()
    return numbers.x, numbers.y


def _with_private_d(lab: Lab) -> dict[str, Any]:
    assert isinstance(lab.wallet.key, ec.EllipticCurvePrivateKey)
    d = lab.wallet.key.private_numbers().private_value
    return {**public_jwk(lab.wallet.key), "d": b64url_encode(d.to_bytes(32, "big"))}


def _kb_for_other_credential(lab: Lab) -> str:
    """A genuine KB-JWT by the same wallet, but made for another credential."""
    other_jwt, other_disclosures = _split(lab.other)
    stolen_kb = lab.present(other_jwt, other_disclosures).rsplit("~", 1)[1]
    body = lab.present().rsplit("~", 1)[0]
    return body + "~" + stolen_kb


def _appended_disclosure(name: str, value: Callable[[Lab], Any]) -> Builder:
    """The attacker adds a disclosure of an envelope claim; the issuer never referenced it."""

    def build(lab: Lab) -> str:
        forged = make_disclosure(value(lab), name=name).encoded
        return lab.present(disclosures=[*lab.disclosures, forged])

    return build


def _referenced_disclosure(name: str) -> Builder:
    """The issuer itself moved ``name`` into a disclosure (digest in ``_sd``): SD-JWT VC says
    it may never be, and the signed payload then lacks it in the clear."""

    def build(lab: Lab) -> str:
        payload = lab.payload
        disclosure = make_disclosure(payload.pop(name), name=name).encoded
        payload["_sd"] = sorted([*payload["_sd"], digest(disclosure)])
        jwt = _sign(lab.header, payload, lab.issuer)
        return lab.present(jwt, [*lab.disclosures, disclosure])

    return build


def _twice(lab: Lab) -> str:
    return lab.present(disclosures=[*lab.disclosures, lab.disclosures[0]])


def _unreferenced(lab: Lab) -> str:
    return lab.present(
        disclosures=[*lab.disclosures, make_disclosure("Amina", name="given_name").encoded]
    )


def _edited_disclosure(lab: Lab) -> str:
    disclosures = lab.disclosures
    salt, name, _value = json.loads(b64url_decode(disclosures[0]))
    disclosures[0] = b64url_encode(json_dumps([salt, name, "Forged"]).encode())
    return lab.present(disclosures=disclosures)


def _replace_char(lab: Lab, index: int, char: str) -> str:
    presentation = lab.present()
    return presentation[:index] + char + presentation[index + 1 :]


def _revoked_pointing_at_valid_entry(key: str, *, kid: str) -> Builder:
    """A revoked credential whose status index is moved to the live credential's entry."""

    def build(lab: Lab) -> str:
        jwt, disclosures = _split(lab.revoked)
        header = json.loads(b64url_decode(jwt.split(".")[0]))
        payload = json.loads(b64url_decode(jwt.split(".")[1]))
        payload["status"] = lab.payload["status"]
        if key == "kept":  # the issuer's signature left as it was
            forged = f"{jwt.split('.')[0]}.{_segment(payload)}.{jwt.split('.')[2]}"
        else:
            header["kid"] = {"issuer": lab.issuer.kid, "attacker": lab.attacker.kid}[kid]
            forged = _sign(header, payload, lab.attacker)
        return lab.present(forged, disclosures)

    return build


def _status_uri(uri: Callable[[Lab], str]) -> Builder:
    def change(lab: Lab) -> Callable[[dict[str, Any]], None]:
        def apply(payload: dict[str, Any]) -> None:
            payload["status"]["status_list"]["uri"] = uri(lab)

        return apply

    return lambda lab: lab.present(lab.resign(change(lab)))


def _status_idx(idx: Any) -> Builder:
    def apply(payload: dict[str, Any]) -> None:
        payload["status"]["status_list"]["idx"] = idx

    return lambda lab: lab.present(lab.resign(apply))


def _foreign_iss(lab: Lab) -> str:
    # An issuer URL on the attacker's server: a verifier that fetches issuer metadata for an
    # unknown issuer would call it.
    payload = {**lab.payload, "iss": lab.trap.url}
    return lab.present(_sign(_header(lab, kid=lab.attacker.kid), payload, lab.attacker))


ATTACKS: list[Any] = [
    # -- "alg": "none" in every case, with and without a signature ----------------------------
    *[
        pytest.param(
            _alg_none(alg, signed=signed),
            ["unsupported_algorithm"],
            id=f"alg-{alg}-{'signed' if signed else 'unsigned'}",
        )
        for alg in ("none", "None", "NONE", "nOnE")
        for signed in (False, True)
    ],
    # -- algorithm confusion ----------------------------------------------------------------
    pytest.param(_hs256(_issuer_pem), ["unsupported_algorithm"], id="hs256-keyed-with-pem"),
    pytest.param(_hs256(_issuer_jwk_text), ["unsupported_algorithm"], id="hs256-keyed-with-jwk"),
    # An allowed algorithm that the issuer's P-256 key is not for: refused after the kid
    # lookup, before any signature check.
    pytest.param(
        lambda lab: lab.present(lab.resign(header=_header(lab, alg="ES384"))),
        ["unsupported_algorithm"],
        id="alg-es384-on-p256-key",
    ),
    pytest.param(
        lambda lab: lab.present(lab.resign(header=_header(lab, alg="EdDSA"))),
        ["unsupported_algorithm"],
        id="alg-eddsa-on-p256-key",
    ),
    pytest.param(
        lambda lab: lab.present(lab.resign(header=_header(lab, alg="es256"))),
        ["unsupported_algorithm"],
        id="alg-lowercase",
    ),
    pytest.param(
        lambda lab: lab.present(lab.resign(header=_header(lab, alg=_DROP))),
        ["unsupported_algorithm"],
        id="alg-missing",
    ),
    pytest.param(
        lambda lab: lab.present(lab.resign(header=_header(lab, alg=["ES256"]))),
        ["unsupported_algorithm"],
        id="alg-array",
    ),
    # -- key material named by the token: never used, never fetched -------------------------
    pytest.param(_key_header("jwk", kid="attacker"), ["unknown_key"], id="jwk-attacker-kid"),
    pytest.param(_key_header("jwk", kid="issuer"), ["invalid_signature"], id="jwk-issuer-kid"),
    pytest.param(_key_header("jwk", kid="none"), ["unknown_key"], id="jwk-no-kid"),
    pytest.param(_key_header("jku", kid="attacker"), ["unknown_key"], id="jku-attacker-kid"),
    pytest.param(_key_header("jku", kid="issuer"), ["invalid_signature"], id="jku-issuer-kid"),
    pytest.param(_key_header("x5u", kid="none"), ["unknown_key"], id="x5u-no-kid"),
    pytest.param(_key_header("x5u", kid="issuer"), ["invalid_signature"], id="x5u-issuer-kid"),
    pytest.param(_key_header("x5c", kid="none"), ["unknown_key"], id="x5c-no-kid"),
    pytest.param(_key_header("x5c", kid="issuer"), ["invalid_signature"], id="x5c-issuer-kid"),
    pytest.param(_foreign_iss, ["unknown_issuer"], id="iss-on-attacker-server"),
    # -- kid: a name looked up in a map, never a path or a query ----------------------------
    pytest.param(_kid("../../keys/x.pem"), ["unknown_key"], id="kid-path-traversal"),
    pytest.param(_kid("' OR 1=1--"), ["unknown_key"], id="kid-sql"),
    pytest.param(_kid(""), ["malformed"], id="kid-empty"),
    pytest.param(_kid("k" * 1000), ["malformed"], id="kid-very-long"),
    pytest.param(_kid(1), ["malformed"], id="kid-number"),
    pytest.param(_kid({"kid": "x"}), ["malformed"], id="kid-object"),
    pytest.param(_kid("\u0000"), ["malformed"], id="kid-nul"),
    pytest.param(_kid(None), ["unknown_key"], id="kid-null"),
    # -- header extensions Thiqa does not implement -----------------------------------------
    pytest.param(
        lambda lab: lab.present(
            lab.resign(header=_header(lab, crit=["x-thiqa"], **{"x-thiqa": 1}))
        ),
        ["malformed"],
        id="crit-unknown",
    ),
    pytest.param(
        lambda lab: lab.present(lab.resign(header=_header(lab, b64=False, crit=["b64"]))),
        ["malformed"],
        id="b64-false",
    ),
    # -- two readings of one token ----------------------------------------------------------
    pytest.param(
        _raw_header(lambda lab: json_dumps(lab.header)[:-1] + ',"typ":"JWT"}'),
        ["malformed"],
        id="duplicate-member-header",
    ),
    pytest.param(
        _raw_payload(lambda lab: json_dumps(lab.payload)[:-1] + ',"iss":"https://evil.example"}'),
        ["malformed"],
        id="duplicate-member-payload",
    ),
    pytest.param(_padded_signature, ["malformed"], id="base64-padding-signature"),
    pytest.param(_padded_payload, ["malformed"], id="base64-padding-payload"),
    pytest.param(_standard_alphabet, ["malformed"], id="base64-standard-alphabet"),
    pytest.param(_padded_disclosure, ["invalid_disclosure"], id="base64-padding-disclosure"),
    pytest.param(lambda lab: lab.present(lab.jwt + ".AAAA"), ["malformed"], id="fourth-segment"),
    pytest.param(lambda lab: lab.present(lab.jwt + "."), ["malformed"], id="fourth-segment-empty"),
    pytest.param(
        _json_serialization(general=False), ["malformed"], id="json-serialization-flattened"
    ),
    pytest.param(_json_serialization(general=True), ["malformed"], id="json-serialization-general"),
    # -- time claims that are not numbers ---------------------------------------------------
    # Constants JSON does not have (NaN, Infinity, 1e400 which reads as infinity) make the
    # payload unreadable: refused before the signature. Values JSON does have but that are
    # not NumericDates are found after the signature, each alone.
    pytest.param(
        _raw_payload(lambda lab: _payload_text(lab, exp="NaN")), ["malformed"], id="exp-nan"
    ),
    pytest.param(
        _raw_payload(lambda lab: _payload_text(lab, exp="Infinity")),
        ["malformed"],
        id="exp-infinity",
    ),
    pytest.param(
        _raw_payload(lambda lab: _payload_text(lab, exp="1e400")), ["malformed"], id="exp-1e400"
    ),
    pytest.param(
        _raw_payload(lambda lab: _payload_text(lab, exp="9" * 5000)),
        ["malformed"],
        id="exp-5000-digits",
    ),
    pytest.param(_set("exp", "4102444800"), ["malformed"], id="exp-string"),
    pytest.param(_set("exp", -1), ["malformed"], id="exp-negative"),
    pytest.param(_set("exp", True), ["malformed"], id="exp-boolean"),
    pytest.param(_set("exp", None), ["malformed"], id="exp-null"),
    pytest.param(_set("exp", 2**53), ["malformed"], id="exp-2-pow-53"),
    pytest.param(_set("iat", "now"), ["malformed"], id="iat-string"),
    # -- size and depth -----------------------------------------------------------------------
    pytest.param(_over_size, ["too_large"], id="one-byte-over-max-credential-bytes"),
    pytest.param(_at_size, ["invalid_disclosure"], id="exactly-max-credential-bytes"),
    pytest.param(_nested(17), ["malformed"], id="payload-nested-17"),
    pytest.param(_nested(4000), ["malformed"], id="payload-nested-4000"),
    pytest.param(
        lambda lab: lab.present(
            disclosures=[*lab.disclosures, b64url_encode(("[" * 3000 + "]" * 3000).encode())]
        ),
        ["invalid_disclosure"],
        id="disclosure-nested-3000",
    ),
    # -- the holder key in the credential (issuer-signed) -----------------------------------
    pytest.param(
        _cnf(lambda lab: _ec_jwk(_wallet_point(lab)[0], _wallet_point(lab)[1] + 1)),
        ["invalid_key_binding"],
        id="cnf-off-curve",
    ),
    pytest.param(
        _cnf(lambda lab: _ec_jwk(*_secp256k1_point())),
        ["invalid_key_binding"],
        id="cnf-invalid-curve-secp256k1-point-as-p256",
    ),
    pytest.param(
        _cnf(lambda lab: _ec_jwk(*_secp256k1_point(), crv="secp256k1")),
        ["invalid_key_binding"],
        id="cnf-unsupported-curve",
    ),
    pytest.param(_cnf(lambda lab: _ec_jwk(0, 0)), ["invalid_key_binding"], id="cnf-zero-point"),
    pytest.param(
        _cnf(lambda lab: _ec_jwk(_wallet_point(lab)[0] + P256_P, _wallet_point(lab)[1], size=33)),
        ["invalid_key_binding"],
        id="cnf-x-plus-p",
    ),
    pytest.param(
        _cnf(lambda lab: _ec_jwk(*_wallet_point(lab), crv="P-384")),
        ["invalid_key_binding"],
        id="cnf-p256-point-as-p384",
    ),
    pytest.param(_cnf(_with_private_d), ["invalid_key_binding"], id="cnf-private-d"),
    pytest.param(
        _cnf(lambda lab: {**public_jwk(lab.wallet.key), "alg": "EdDSA"}),
        ["invalid_key_binding"],
        id="cnf-alg-contradicts-curve",
    ),
    pytest.param(
        _cnf(lambda lab: {**public_jwk(lab.wallet.key), "use": "enc"}),
        ["invalid_key_binding"],
        id="cnf-use-enc",
    ),
    pytest.param(
        _cnf(lambda lab: {**public_jwk(lab.wallet.key), "key_ops": ["encrypt"]}),
        ["invalid_key_binding"],
        id="cnf-key-ops-encrypt",
    ),
    pytest.param(
        _cnf(lambda lab: {"kty": "oct", "k": b64url_encode(b"k" * 32)}),
        ["invalid_key_binding"],
        id="cnf-symmetric-key",
    ),
    # -- the issuer's ECDSA signature --------------------------------------------------------
    pytest.param(
        _signature(lambda r, s, raw: bytes(64)), ["invalid_signature"], id="ecdsa-r0-s0-all-zero"
    ),
    pytest.param(
        _signature(lambda r, s, raw: _rs_bytes(0, s)), ["invalid_signature"], id="ecdsa-r-zero"
    ),
    pytest.param(
        _signature(lambda r, s, raw: _rs_bytes(P256_N, s)),
        ["invalid_signature"],
        id="ecdsa-r-equals-n",
    ),
    pytest.param(
        _signature(lambda r, s, raw: _rs_bytes(r, P256_N)),
        ["invalid_signature"],
        id="ecdsa-s-equals-n",
    ),
    pytest.param(
        _signature(lambda r, s, raw: _rs_bytes(2**256 - 1, s)),
        ["invalid_signature"],
        id="ecdsa-r-above-n",
    ),
    pytest.param(
        _signature(lambda r, s, raw: _rs_bytes(r, 2**256 - 1)),
        ["invalid_signature"],
        id="ecdsa-s-above-n",
    ),
    pytest.param(
        _signature(lambda r, s, raw: _rs_bytes(s, r)), ["invalid_signature"], id="ecdsa-r-s-swapped"
    ),
    pytest.param(
        _signature(lambda r, s, raw: raw[:63]), ["invalid_signature"], id="ecdsa-63-bytes"
    ),
    pytest.param(
        _signature(lambda r, s, raw: raw + b"\x00"), ["invalid_signature"], id="ecdsa-65-bytes"
    ),
    pytest.param(
        _signature(lambda r, s, raw: bytes(16) + raw[:32] + bytes(16) + raw[32:]),
        ["invalid_signature"],
        id="ecdsa-96-bytes-zero-extended",
    ),
    pytest.param(_signature(_der), ["invalid_signature"], id="ecdsa-der-encoded"),
    pytest.param(_signature(lambda r, s, raw: b""), ["malformed"], id="ecdsa-empty"),
    # -- the key-binding JWT -------------------------------------------------------------
    pytest.param(
        lambda lab: lab.present(kb_key=lab.issuer),
        ["invalid_key_binding"],
        id="kb-signed-by-issuer-key",
    ),
    pytest.param(
        lambda lab: lab.present(
            kb_key=lab.attacker,
            kb_header={"alg": "ES256", "typ": "kb+jwt", "jwk": public_jwk(lab.attacker.key)},
        ),
        ["invalid_key_binding"],
        id="kb-attacker-key-in-jwk-header",
    ),
    pytest.param(_kb_for_other_credential, ["invalid_key_binding"], id="kb-for-another-credential"),
    pytest.param(
        lambda lab: lab.present().rsplit("~", 1)[0] + "~" + lab.jwt,
        ["invalid_key_binding"],
        id="credential-jwt-as-kb-jwt",
    ),
    pytest.param(
        lambda lab: lab.present().rsplit("~", 1)[1] + "~", ["wrong_type"], id="kb-jwt-as-credential"
    ),
    pytest.param(
        lambda lab: lab.present(kb_header={"alg": "none", "typ": "kb+jwt"}),
        ["invalid_key_binding"],
        id="kb-alg-none",
    ),
    pytest.param(
        lambda lab: lab.present(kb_header={"alg": "ES256", "typ": "JWT"}),
        ["invalid_key_binding"],
        id="kb-typ-jwt",
    ),
    pytest.param(
        lambda lab: lab.present(kb_claims={"sd_hash": None}),
        ["invalid_key_binding"],
        id="kb-sd-hash-null",
    ),
    pytest.param(
        lambda lab: lab.present(*_split(lab.unbound)),
        ["invalid_key_binding"],
        id="kb-on-credential-without-cnf",
    ),
    # -- the credential's typ -----------------------------------------------------------------
    *[
        pytest.param(
            lambda lab, typ=typ: lab.present(lab.resign(header=_header(lab, typ=typ))),
            ["wrong_type"],
            id=f"typ-{name}",
        )
        for name, typ in [
            ("JWT", "JWT"),
            ("kb+jwt", "kb+jwt"),
            ("statuslist+jwt", "statuslist+jwt"),
            ("missing", _DROP),
            ("number", 1),
            ("sd-jwt", "sd-jwt"),
        ]
    ],
    # -- disclosures ------------------------------------------------------------------------
    *[
        pytest.param(
            _appended_disclosure(name, value),
            ["invalid_disclosure"],
            id=f"disclosure-of-{name}-added",
        )
        for name, value in [
            ("iss", lambda lab: "https://evil.example"),
            ("status", lambda lab: {"status_list": {"idx": 0, "uri": "https://evil.example"}}),
            ("cnf", lambda lab: {"jwk": public_jwk(lab.attacker.key)}),
            ("exp", lambda lab: 4102444800),
        ]
    ],
    # The issuer put exp (status) in a disclosure: refused, and the signed payload lacks
    # exp (status) in the clear, which is its own failure: two codes, both true.
    pytest.param(
        _referenced_disclosure("exp"),
        ["invalid_disclosure", "malformed"],
        id="disclosure-of-exp-referenced-by-issuer",
    ),
    pytest.param(
        _referenced_disclosure("status"),
        ["invalid_disclosure", "invalid_status_reference"],
        id="disclosure-of-status-referenced-by-issuer",
    ),
    pytest.param(_twice, ["invalid_disclosure"], id="disclosure-twice"),
    pytest.param(_unreferenced, ["invalid_disclosure"], id="disclosure-unreferenced"),
    pytest.param(_edited_disclosure, ["invalid_disclosure"], id="disclosure-edited"),
    pytest.param(
        lambda lab: lab.present(
            disclosures=[*lab.disclosures, make_disclosure("x", name="_sd").encoded]
        ),
        ["invalid_disclosure"],
        id="disclosure-named-_sd",
    ),
    # No KB-JWT can hold over an unsupported hash: sd_hash is computed with _sd_alg.
    pytest.param(
        _set("_sd_alg", "md5"), ["invalid_disclosure", "invalid_key_binding"], id="sd-alg-md5"
    ),
    # -- shape of the presentation ----------------------------------------------------------
    pytest.param(lambda lab: lab.jwt + "~~", ["malformed"], id="empty-component"),
    pytest.param(lambda lab: "~" + lab.present(), ["malformed"], id="empty-issuer-jwt"),
    pytest.param(lambda lab: lab.jwt, ["malformed"], id="bare-jwt-no-tilde"),
    pytest.param(
        lambda lab: _replace_char(lab, 0, "\u0435"), ["malformed"], id="cyrillic-e-lookalike"
    ),
    pytest.param(
        lambda lab: _replace_char(lab, 1, "\uff59"), ["malformed"], id="fullwidth-y-lookalike"
    ),
    pytest.param(lambda lab: lab.present() + "\u200b", ["malformed"], id="zero-width-space"),
    pytest.param(lambda lab: "\u202e" + lab.present(), ["malformed"], id="rtl-override"),
    pytest.param(lambda lab: _replace_char(lab, 5, "\x00"), ["malformed"], id="nul-in-header"),
    pytest.param(
        lambda lab: lab.present(disclosures=["\x00" + lab.disclosures[0], *lab.disclosures[1:]]),
        ["invalid_disclosure"],
        id="nul-in-disclosure",
    ),
    pytest.param(
        lambda lab: lab.present().rsplit("~", 1)[0] + "~\x00",
        ["invalid_key_binding"],
        id="nul-as-kb-jwt",
    ),
    # -- revocation and status --------------------------------------------------------------
    pytest.param(lambda lab: lab.present(*_split(lab.revoked)), ["revoked"], id="revoked"),
    pytest.param(
        _revoked_pointing_at_valid_entry("kept", kid="issuer"),
        ["invalid_signature"],
        id="revoked-status-moved-signature-kept",
    ),
    pytest.param(
        _revoked_pointing_at_valid_entry("attacker", kid="issuer"),
        ["invalid_signature"],
        id="revoked-status-moved-resigned-issuer-kid",
    ),
    pytest.param(
        _revoked_pointing_at_valid_entry("attacker", kid="attacker"),
        ["unknown_key"],
        id="revoked-status-moved-resigned-attacker-kid",
    ),
    pytest.param(
        _status_uri(lambda lab: f"{lab.trap.url}/status-lists/x"),
        ["invalid_status_reference"],
        id="status-uri-on-attacker-server",
    ),
    pytest.param(
        _status_uri(lambda lab: lab.settings.status_list_uri("../../x")),
        ["invalid_status_reference"],
        id="status-uri-path-traversal",
    ),
    pytest.param(_status_idx(10**9), ["invalid_status_reference"], id="status-idx-out-of-range"),
    pytest.param(_status_idx(-1), ["invalid_status_reference"], id="status-idx-negative"),
    pytest.param(_status_idx("0"), ["invalid_status_reference"], id="status-idx-string"),
    pytest.param(
        _set("vct", "https://evil.example/types/national-id"),
        ["untrusted_type"],
        id="vct-not-trusted",
    ),
    pytest.param(_set("iss", 7), ["malformed"], id="iss-number"),
]


@pytest.mark.parametrize(("attack", "expected"), ATTACKS)
def test_attack_is_refused_with_its_code(lab: Lab, attack: Builder, expected: list[str]) -> None:
    verdict, audited = lab.verify_audited(attack(lab))
    assert [error["code"] for error in verdict["errors"]] == expected
    assert verdict["valid"] is False
    assert verdict["claims"] is None
    assert_changed_nothing(lab, audited, expected)


def assert_changed_nothing(lab: Lab, audited: AuditEntry | None, codes: list[str]) -> None:
    """Nothing fetched from the attacker, nothing written to Redis but the verification's
    audit entry (none when the signature never held: counted instead), and that entry says
    what the verdict said, with no personal claim."""
    assert lab.trap.requests == []
    assert _snapshot(lab.redis, lab.settings.redis_prefix) == lab.written_before
    if audited is None:
        return
    assert audited.action == AuditAction.CREDENTIAL_VERIFIED
    assert list(audited.result) == codes
    text = json.dumps(dataclasses.asdict(audited), ensure_ascii=False)
    assert [value for value in CITIZEN.values() if len(value) > 2 and value in text] == []


def test_the_corpus_is_large_and_distinct() -> None:
    ids = [param.id for param in ATTACKS]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 40


def test_ten_megabytes_is_refused_before_the_app(lab: Lab) -> None:
    """10 MB never reaches the verifier: the body limit answers 413 from the declared length."""
    body = b'{"credential": "' + b"A" * (10 * 1024 * 1024) + b'"}'
    response = lab.http.post(
        "/v1/verify", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "request_too_large"
    assert "valid" not in problem
    assert "claims" not in problem


def test_the_server_still_serves_after_every_attack(lab: Lab) -> None:
    """Sends the whole corpus itself, whatever ran before: afterwards the server still
    serves, a genuine presentation still verifies, and nothing was written or fetched."""
    for param in ATTACKS:
        attack, expected = param.values
        assert [e["code"] for e in lab.verify(attack(lab))["errors"]] == expected, param.id
    assert lab.http.get("/health").status_code == 200
    genuine, audited = lab.verify_audited(lab.present())
    assert genuine["valid"] is True, genuine
    assert genuine["claims"] == CITIZEN
    assert audited is not None
    assert_changed_nothing(lab, audited, ["valid"])
