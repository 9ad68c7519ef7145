"""Published mdoc vectors, each checked for exactly its expected outcome.

- ISO/IEC 18013-5 Annex D (via multipaz, Apache-2.0; roots via NL Wallet, EUPL-1.2): the
  DeviceResponse verifies at a time inside its validity, with its six elements, the MAC and
  the chain to the Utopia IACA; today it is expired.
- OpenID4VP 1.0 Appendix B.2.6: both SessionTranscripts, byte for byte.
- EUDI reference verifier samples (Apache-2.0): the outcomes its own tests expect.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from service.core.keys import jwk_thumbprint
from service.core.mdoc.cbor import decode, decode_embedded, encode
from service.core.mdoc.device_response import inspect_device_response
from service.core.mdoc.handover import dc_api_session_transcript, redirect_session_transcript
from service.core.reasons import Reason

VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "mdoc"
ANNEX_D = json.loads((VECTORS / "iso-18013-5-annex-d.json").read_text())
ROOTS = json.loads((VECTORS / "iso-18013-5-annex-d-roots.json").read_text())
HANDOVER = json.loads((VECTORS / "openid4vp-handover.json").read_text())
EUDI = json.loads((VECTORS / "eudi-pid-sample.json").read_text())


def _annex(name: str) -> bytes:
    for vector in ANNEX_D["vectors"]:
        if vector["name"] == f"ISO_18013_5_ANNEX_D_{name}":
            return bytes.fromhex(vector["value"])
    raise KeyError(name)


def _unix(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


IACA = x509.load_der_x509_certificate(bytes.fromhex(ROOTS["vectors"][0]["value"]))
INSIDE_VALIDITY = _unix("2021-01-01T00:00:00Z")


def _annex_mac_key_and_transcript() -> tuple[bytes, Any]:
    """EMacKey = HKDF-SHA256(ECDH(SDeviceKey, EReaderKey), salt = SHA-256(transcript bytes),
    info "EMacKey") (ISO/IEC 18013-5 §9.1.3.5), from the vector's keys."""
    transcript_bytes = _annex("SESSION_TRANSCRIPT_BYTES")
    transcript, _ = decode_embedded(decode(transcript_bytes))
    device = ec.derive_private_key(
        int.from_bytes(_annex("STATIC_DEVICE_KEY_D"), "big"), ec.SECP256R1()
    )
    reader = ec.EllipticCurvePublicKey.from_encoded_point(
        ec.SECP256R1(),
        b"\x04" + _annex("EPHEMERAL_READER_KEY_X") + _annex("EPHEMERAL_READER_KEY_Y"),
    )
    shared = device.exchange(ec.ECDH(), reader)
    key = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=hashlib.sha256(transcript_bytes).digest(),
        info=b"EMacKey",
    ).derive(shared)
    assert key.hex() == ANNEX_D["derived"]["EMacKey_hex"]
    return key, transcript


def test_annex_d_device_response_verifies_with_its_six_elements_and_mac() -> None:
    mac_key, transcript = _annex_mac_key_and_transcript()
    [document] = inspect_device_response(
        _annex("DEVICE_RESPONSE"),
        transcript=transcript,
        anchors=[IACA],
        now=INSIDE_VALIDITY,
        mac_key=mac_key,
    )
    # Everything holds; the 2021 mDL predates the status list, so it names none.
    assert [f.reason for f in document.failures] == [Reason.INVALID_STATUS_REFERENCE]
    assert document.device_bound
    assert document.doctype == "org.iso.18013.5.1.mDL"
    assert document.anchor == IACA
    assert document.elements is not None
    elements = document.elements["org.iso.18013.5.1"]
    assert sorted(elements) == sorted(
        ANNEX_D["device_response"]["issuer_namespaces"]["org.iso.18013.5.1"]
    )
    assert elements["family_name"] == "Doe"
    assert elements["document_number"] == "123456789"
    assert elements["issue_date"] == date(2019, 10, 20)
    assert elements["portrait"] == _annex("DEVICE_RESPONSE_PORTRAIT_DATA")


def test_annex_d_mac_over_another_transcript_is_refused() -> None:
    mac_key, _ = _annex_mac_key_and_transcript()
    other = redirect_session_transcript(client_id="x", nonce="n", response_uri="https://x/")
    [document] = inspect_device_response(
        _annex("DEVICE_RESPONSE"),
        transcript=other,
        anchors=[IACA],
        now=INSIDE_VALIDITY,
        mac_key=mac_key,
    )
    assert Reason.INVALID_DEVICE_SIGNATURE in {f.reason for f in document.failures}
    assert not document.device_bound


def test_annex_d_today_is_expired() -> None:
    _, transcript = _annex_mac_key_and_transcript()
    [document] = inspect_device_response(
        _annex("DEVICE_RESPONSE"),
        transcript=transcript,
        anchors=[IACA],
        now=_unix("2026-01-01T00:00:00Z"),
    )
    assert [f.reason for f in document.failures] == [Reason.CERTIFICATE_EXPIRED]
    assert document.elements is None


def test_annex_d_without_its_iaca_is_untrusted() -> None:
    _, transcript = _annex_mac_key_and_transcript()
    reader_root = x509.load_der_x509_certificate(bytes.fromhex(ROOTS["vectors"][1]["value"]))
    [document] = inspect_device_response(
        _annex("DEVICE_RESPONSE"),
        transcript=transcript,
        anchors=[reader_root],
        now=INSIDE_VALIDITY,
    )
    assert [f.reason for f in document.failures] == [Reason.UNTRUSTED_CERTIFICATE]


@pytest.mark.parametrize("flow", ["redirect", "dc_api"])
def test_openid4vp_session_transcripts_are_byte_exact(flow: str) -> None:
    case = HANDOVER[flow]
    inputs = case["inputs"]
    thumbprint = base64.urlsafe_b64decode(jwk_thumbprint(inputs["encryption_jwk"]) + "=")
    assert thumbprint.hex() == case["derived"]["jwk_thumbprint_hex"]
    if flow == "redirect":
        transcript = redirect_session_transcript(
            client_id=inputs["client_id"],
            nonce=inputs["nonce"],
            response_uri=inputs["response_uri"],
            jwk_thumbprint=thumbprint,
        )
    else:
        transcript = dc_api_session_transcript(
            origin=inputs["origin"], nonce=inputs["nonce"], jwk_thumbprint=thumbprint
        )
    assert encode(transcript).hex() == case["expected"]["SessionTranscript_hex"]


def _eudi(name: str) -> bytes:
    value = next(v["value"] for v in EUDI["vectors"] if v["name"] == name)
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


EUDI_CLOCK = _unix("2024-10-31T22:00:00Z")
EUDI_ANCHOR = x509.load_pem_x509_certificate(EUDI["trust_anchors"][0]["value"].encode())
#: The source tests validate without a SessionTranscript; any transcript fails the device
#: signature, which the outcomes below therefore include.
UNKNOWN_TRANSCRIPT = redirect_session_transcript(client_id="c", nonce="n", response_uri="u")


def test_eudi_three_documents_the_third_expired() -> None:
    documents = inspect_device_response(
        _eudi("ThreeDocumentVP"),
        transcript=UNKNOWN_TRANSCRIPT,
        anchors=[EUDI_ANCHOR],
        now=EUDI_CLOCK,
    )
    reasons = [{f.reason for f in d.failures} for d in documents]
    unchecked = {Reason.INVALID_DEVICE_SIGNATURE, Reason.INVALID_STATUS_REFERENCE}
    assert reasons == [unchecked, unchecked, unchecked | {Reason.EXPIRED}]
    assert documents[0].elements == {
        "eu.europa.ec.eudi.pid.1": {
            "family_name": "agal",
            "given_name": "xenia",
            "birth_date": date(2024, 10, 2),
        }
    }
    assert documents[2].doctype == "org.iso.18013.5.1.mDL"


def test_eudi_mdl_with_a_foreign_chain_is_untrusted() -> None:
    [document] = inspect_device_response(
        _eudi("MdlVP"), transcript=UNKNOWN_TRANSCRIPT, anchors=[EUDI_ANCHOR], now=EUDI_CLOCK
    )
    assert [f.reason for f in document.failures] == [Reason.UNTRUSTED_CERTIFICATE]
    assert datetime.fromtimestamp(EUDI_CLOCK, UTC).year == 2024
