"""Issuing an mdoc, presenting it and checking the DeviceResponse: each outcome exact."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from typing import Any

import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from service.core.credential import StatusReference
from service.core.mdoc import issuer_signed
from service.core.mdoc.cbor import decode, decode_embedded, embed, encode
from service.core.mdoc.device_response import DocumentInspection, inspect_device_response, present
from service.core.mdoc.handover import redirect_session_transcript
from service.core.reasons import Reason, VerificationFailure
from tests.core.mdoc.pki import ThrowawayPKI, make_pki

NOW = int(datetime(2026, 6, 1, tzinfo=UTC).timestamp())
DAY = 86_400
DOCTYPE = "ma.thiqa.nid.1"
NS = "ma.thiqa.nid.1"
PKI = make_pki()
ELEMENTS = {
    NS: {
        "family_name": "Alaoui",
        "given_name": "Amina",
        "family_name_national_character": "العلوي",
        "given_name_national_character": "أمينة",
        "birth_date": date(1990, 4, 12),
        "nationality": "MA",
    }
}
TRANSCRIPT = redirect_session_transcript(
    client_id="x509_hash:abc", nonce="n-1", response_uri="https://verifier.example/r"
)
STATUS = StatusReference(uri="https://thiqa.example/v1/status-lists/1", idx=7)


def issue(
    device: ec.EllipticCurvePrivateKey,
    *,
    signed: int = NOW - DAY,
    days: int = 365,
    pki: ThrowawayPKI = PKI,
) -> dict[str, Any]:
    return issuer_signed.issue(
        ELEMENTS,
        doctype=DOCTYPE,
        device_key=device.public_key(),
        signer_key=pki.signer_key,
        x5chain=[pki.signer],
        signed=signed,
        valid_until=signed + days * DAY,
        status=STATUS,
    )


DEVICE = ec.generate_private_key(ec.SECP256R1())
ISSUED = issue(DEVICE)


def presented(
    disclose: dict[str, list[str]] | None = None,
    *,
    issued: dict[str, Any] = ISSUED,
    transcript: list[Any] = TRANSCRIPT,
) -> bytes:
    return present(
        issued,
        doctype=DOCTYPE,
        disclose=disclose or {NS: ["family_name", "birth_date"]},
        device_key=DEVICE,
        transcript=transcript,
    )


def inspect(
    data: bytes,
    *,
    now: int = NOW,
    transcript: list[Any] = TRANSCRIPT,
    anchors: list[x509.Certificate] | None = None,
) -> list[DocumentInspection]:
    return inspect_device_response(
        data, transcript=transcript, anchors=anchors or [PKI.iaca], now=now
    )


def test_a_presented_mdoc_verifies_with_only_the_disclosed_elements() -> None:
    [document] = inspect(presented())
    assert document.failures == ()
    assert document.device_bound
    assert document.doctype == DOCTYPE
    assert document.elements == {NS: {"family_name": "Alaoui", "birth_date": date(1990, 4, 12)}}
    assert document.status_ref == STATUS
    assert document.anchor == PKI.iaca


def test_issued_items_have_fresh_32_byte_salts_and_unique_digest_ids() -> None:
    items = issuer_signed.items_of(ISSUED["nameSpaces"])[NS]
    again = issuer_signed.items_of(issue(DEVICE)["nameSpaces"])[NS]
    assert all(len(i.random) == 32 for i in items)
    assert len({i.random for i in items + again}) == 2 * len(items)
    assert sorted(i.digest_id for i in items) == list(range(len(items)))


def test_arabic_names_are_national_character_elements() -> None:
    [document] = inspect(presented({NS: ["given_name_national_character"]}))
    assert document.elements == {NS: {"given_name_national_character": "أمينة"}}


def test_a_signature_over_another_transcript_is_refused() -> None:
    other = redirect_session_transcript(
        client_id="x509_hash:abc", nonce="n-2", response_uri="https://verifier.example/r"
    )
    [document] = inspect(presented(transcript=other))
    assert [f.reason for f in document.failures] == [Reason.INVALID_DEVICE_SIGNATURE]
    assert not document.device_bound


def test_another_holder_key_cannot_present() -> None:
    thief = ec.generate_private_key(ec.SECP256R1())
    data = present(
        ISSUED,
        doctype=DOCTYPE,
        disclose={NS: ["family_name"]},
        device_key=thief,
        transcript=TRANSCRIPT,
    )
    [document] = inspect(data)
    assert [f.reason for f in document.failures] == [Reason.INVALID_DEVICE_SIGNATURE]


def test_an_expired_mso_is_expired() -> None:
    [document] = inspect(presented(issued=issue(DEVICE, signed=NOW - 30 * DAY, days=10)))
    assert [f.reason for f in document.failures] == [Reason.EXPIRED]


def test_an_mso_signed_in_the_future_is_not_yet_valid() -> None:
    [document] = inspect(presented(issued=issue(DEVICE, signed=NOW + DAY)))
    assert [f.reason for f in document.failures] == [Reason.NOT_YET_VALID]


def test_an_untrusted_document_signer_is_refused() -> None:
    stranger = make_pki(name="Stranger")
    [document] = inspect(presented(issued=issue(DEVICE, pki=stranger)))
    assert [f.reason for f in document.failures] == [Reason.UNTRUSTED_CERTIFICATE]
    assert document.elements is None


def test_an_expired_document_signer_certificate_is_refused() -> None:
    [document] = inspect(presented(), now=NOW + 20 * 365 * DAY)
    assert [f.reason for f in document.failures] == [Reason.CERTIFICATE_EXPIRED]


def test_a_document_signer_not_valid_yet_is_refused() -> None:
    [document] = inspect(presented(), now=int(datetime(2025, 6, 1, tzinfo=UTC).timestamp()))
    assert [f.reason for f in document.failures] == [Reason.CERTIFICATE_NOT_YET_VALID]


def test_a_signer_without_the_document_signer_eku_is_untrusted() -> None:
    server_auth = make_pki(eku=ExtendedKeyUsageOID.SERVER_AUTH)
    issued = issue(DEVICE, pki=server_auth)
    [document] = inspect(presented(issued=issued), anchors=[server_auth.iaca])
    assert [f.reason for f in document.failures] == [Reason.UNTRUSTED_CERTIFICATE]


def _tamper_item(issued: dict[str, Any], identifier: str, value: object) -> dict[str, Any]:
    """Replace one element's value, keeping its digestID and salt: the digest breaks."""
    items = []
    for wrapped in issued["nameSpaces"][NS]:
        item, _ = decode_embedded(wrapped)
        if item["elementIdentifier"] == identifier:
            item["elementValue"] = value
            wrapped = embed(item)
        items.append(wrapped)
    return {**issued, "nameSpaces": {NS: items}}


def test_a_changed_element_value_is_a_digest_mismatch() -> None:
    forged = _tamper_item(ISSUED, "family_name", "Bennani")
    [document] = inspect(presented({NS: ["family_name", "nationality"]}, issued=forged))
    assert [f.reason for f in document.failures] == [Reason.DIGEST_MISMATCH]
    assert document.elements == {NS: {"nationality": "MA"}}


def test_an_element_the_mso_never_listed_is_refused() -> None:
    extra = embed(
        {
            "digestID": 999,
            "random": b"\0" * 32,
            "elementIdentifier": "age_over_18",
            "elementValue": True,
        }
    )
    forged = {**ISSUED, "nameSpaces": {NS: [*ISSUED["nameSpaces"][NS], extra]}}
    [document] = inspect(presented({NS: ["age_over_18"]}, issued=forged))
    assert [f.reason for f in document.failures] == [Reason.ELEMENT_NOT_IN_MSO]
    assert document.elements == {}


def test_a_document_claiming_another_doctype_is_refused() -> None:
    response = decode(presented())
    response["documents"][0]["docType"] = "org.iso.18013.5.1.mDL"
    [document] = inspect(encode(response))
    # The device signed the original docType too: both checks fail.
    assert [f.reason for f in document.failures] == [
        Reason.DOCTYPE_MISMATCH,
        Reason.INVALID_DEVICE_SIGNATURE,
    ]


def test_an_altered_mso_breaks_the_issuer_signature() -> None:
    response = decode(presented())
    issuer_auth = response["documents"][0]["issuerSigned"]["issuerAuth"]
    mso, _ = decode_embedded(decode(issuer_auth[2]))
    mso["validityInfo"]["validUntil"] = datetime(2099, 1, 1, tzinfo=UTC)
    issuer_auth[2] = encode(embed(mso))
    [document] = inspect(encode(response))
    assert [f.reason for f in document.failures] == [Reason.INVALID_SIGNATURE]


def test_the_mso_digest_covers_the_tag_24_item() -> None:
    items = issuer_signed.items_of(ISSUED["nameSpaces"])[NS]
    mso, _ = decode_embedded(decode(ISSUED["issuerAuth"][2]))
    for item in items:
        digest = hashlib.sha256(cbor2.dumps(item.wrapped)).digest()
        assert mso["valueDigests"][NS][item.digest_id] == digest
    assert mso["status"] == {"status_list": {"idx": 7, "uri": STATUS.uri}}
    assert mso["deviceKeyInfo"]["deviceKey"][-2] == DEVICE.public_key().public_numbers().x.to_bytes(
        32, "big"
    )


@pytest.mark.parametrize("status", [0, 10])
def test_a_response_with_an_error_status_is_a_wallet_error(status: int) -> None:
    response = decode(presented())
    response["status"] = status
    if status == 0:
        [document] = inspect(encode(response))
        assert document.failures == ()
    else:
        with pytest.raises(VerificationFailure) as caught:
            inspect(encode(response))
        assert caught.value.reason is Reason.WALLET_ERROR
