"""Independent mdoc implementations agree with Thiqa, both ways.

- IdentityPython ``pymdoccbor`` checks the issuer signature, the chain to Thiqa's IACA and
  every element digest of an mdoc Thiqa issued (it does not check device signatures).
- ``isomdoc``'s ``verify_device_response`` checks a DeviceResponse Thiqa's wallet code made,
  including the device signature over the OpenID4VP SessionTranscript.
- Thiqa checks mdocs issued by both libraries, presented with Thiqa's wallet code.

The library-made mdocs name no status list, so Thiqa's verdict on them holds exactly one
failure: ``invalid_status_reference`` (an unknown status is never "valid").
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta

import cbor2
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec
from isomdoc import create_mdoc, verify_device_response
from pymdoccbor.mdoc.issuer import MdocCborIssuer
from pymdoccbor.mdoc.verifier import MdocCbor

from service.core.credential import StatusReference
from service.core.mdoc import issuer_signed, national_id
from service.core.mdoc.cbor import decode, encode
from service.core.mdoc.device_response import inspect_device_response, present
from service.core.mdoc.handover import redirect_session_transcript
from service.core.reasons import Reason
from tests.core.mdoc.pki import make_pki

NS = national_id.NAMESPACE
NOW = datetime.now(UTC)
PKI = make_pki(not_before=NOW - timedelta(days=1))
DEVICE = ec.generate_private_key(ec.SECP256R1())
TRANSCRIPT = redirect_session_transcript(
    client_id="x509_hash:interop", nonce="n-interop", response_uri="https://v.example/r"
)
CLAIMS = {
    "given_name": "Amina",
    "family_name": "El Idrissi",
    "given_name#ar": "أمينة",
    "family_name#ar": "الإدريسي",
    "birthdate": "1990-04-12",
    "national_id": "ZZ104233",
    "nationality": "MA",
}


@pytest.fixture(autouse=True)
def _quiet_libraries(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="pymdoccbor")


def _thiqa_issued() -> dict:
    now = int(NOW.timestamp())
    return issuer_signed.issue(
        national_id.elements_from_claims(CLAIMS, issued_at=now, expires_at=now + 86_400 * 30),
        doctype=national_id.DOCTYPE,
        device_key=DEVICE.public_key(),
        signer_key=PKI.signer_key,
        x5chain=[PKI.signer],
        signed=now,
        valid_until=now + 86_400 * 30,
        status=StatusReference(uri="https://thiqa.example/status-lists/a", idx=3),
    )


def test_pymdoccbor_verifies_a_thiqa_mdoc_against_thiqas_iaca() -> None:
    response = {
        "version": "1.0",
        "documents": [{"docType": national_id.DOCTYPE, "issuerSigned": _thiqa_issued()}],
        "status": 0,
    }
    reader = MdocCbor()
    reader.loads(encode(response))
    assert reader.verify(trusted_root_certs=[PKI.iaca]) is True
    assert reader.documents_invalid == []
    [document] = reader.documents
    assert document.hash_verification["verified"] == document.hash_verification["total"] == 9
    claims = reader.disclosure_map[NS]
    assert claims["given_name_national_character"] == "أمينة"
    assert claims["personal_administrative_number"] == "ZZ104233"


def test_pymdoccbor_refuses_a_thiqa_mdoc_under_another_iaca() -> None:
    stranger = make_pki(not_before=NOW - timedelta(days=1), name="Stranger")
    response = {
        "version": "1.0",
        "documents": [{"docType": national_id.DOCTYPE, "issuerSigned": _thiqa_issued()}],
        "status": 0,
    }
    reader = MdocCbor()
    reader.loads(encode(response))
    assert reader.verify(trusted_root_certs=[stranger.iaca]) is False


def _thiqa_presented(transcript: list = TRANSCRIPT) -> bytes:
    return present(
        _thiqa_issued(),
        doctype=national_id.DOCTYPE,
        disclose={NS: ["given_name", "birth_date"]},
        device_key=DEVICE,
        transcript=transcript,
    )


def test_isomdoc_verifies_a_thiqa_device_response_with_its_device_signature() -> None:
    result = verify_device_response(_thiqa_presented(), TRANSCRIPT)
    [document] = result.documents
    assert document.doctype == national_id.DOCTYPE
    assert document.issuer_signed.get_element_value(NS, "given_name") == "Amina"
    assert document.issuer_signed.get_element_value(NS, "birth_date") == date(1990, 4, 12)
    assert document.issuer_signed.get_element_value(NS, "family_name") is None  # not disclosed


def test_isomdoc_refuses_a_thiqa_device_response_over_another_transcript() -> None:
    other = redirect_session_transcript(
        client_id="x509_hash:interop", nonce="n-other", response_uri="https://v.example/r"
    )
    with pytest.raises(InvalidSignature):
        verify_device_response(_thiqa_presented(other), TRANSCRIPT)


def _check(issued: dict, doctype: str, disclose: dict) -> list:
    data = present(
        issued, doctype=doctype, disclose=disclose, device_key=DEVICE, transcript=TRANSCRIPT
    )
    # The clock now, not at import: pymdoccbor signs validFrom at its own "now".
    return inspect_device_response(
        data, transcript=TRANSCRIPT, anchors=[PKI.iaca], now=int(datetime.now(UTC).timestamp())
    )


def test_thiqa_verifies_an_isomdoc_mdoc() -> None:
    mdoc = create_mdoc("org.iso.18013.5.1.mDL", [PKI.signer], PKI.signer_key)
    mdoc.add_data_item("org.iso.18013.5.1", "family_name", "Bennani")
    mdoc.add_data_item("org.iso.18013.5.1", "birth_date", date(1985, 3, 30))
    issued = decode(
        mdoc.generate_credential(
            DEVICE.public_key(),
            signed_datetime=NOW - timedelta(minutes=1),
            valid_from_datetime=NOW - timedelta(minutes=1),
            valid_until_datetime=NOW + timedelta(days=30),
        )
    )
    [document] = _check(issued, "org.iso.18013.5.1.mDL", {"org.iso.18013.5.1": ["family_name"]})
    assert [f.reason for f in document.failures] == [Reason.INVALID_STATUS_REFERENCE]
    assert document.device_bound
    assert document.elements == {"org.iso.18013.5.1": {"family_name": "Bennani"}}


def test_thiqa_verifies_a_pymdoccbor_mdoc() -> None:
    d = PKI.signer_key.private_numbers().private_value.to_bytes(32, "big")
    issuer = MdocCborIssuer(
        private_key={"KTY": "EC2", "CURVE": "P_256", "ALG": "ES256", "D": d, "KID": b"ds"},
        alg="ES256",
    )
    numbers = DEVICE.public_key().public_numbers()
    made = issuer.new(
        data={"eu.europa.ec.eudi.pid.1": {"family_name": "Bennani", "given_name": "Youssef"}},
        doctype="eu.europa.ec.eudi.pid.1",
        validity={
            "issuance_date": NOW.date().isoformat(),
            "expiry_date": (NOW + timedelta(days=30)).date().isoformat(),
        },
        devicekeyinfo={
            "KTY": "EC2",
            "CURVE": "P_256",
            "X": numbers.x.to_bytes(32, "big"),
            "Y": numbers.y.to_bytes(32, "big"),
        },
        x509_chain=[PKI.signer],
    )
    # Round-trip through bytes, as a wallet would receive it.
    issued = decode(cbor2.dumps(made["documents"][0]["issuerSigned"]))
    [document] = _check(
        issued, "eu.europa.ec.eudi.pid.1", {"eu.europa.ec.eudi.pid.1": ["given_name"]}
    )
    assert [f.reason for f in document.failures] == [Reason.INVALID_STATUS_REFERENCE]
    assert document.device_bound
    assert document.elements == {"eu.europa.ec.eudi.pid.1": {"given_name": "Youssef"}}
