"""DeviceResponse (ISO/IEC 18013-5 §8.3.2.1.2.2): what a wallet presents, and checking it.

A wallet answers with ``{version, documents: [{docType, issuerSigned, deviceSigned}], status}``.
The issuer part is checked by :mod:`service.core.mdoc.issuer_signed`; the device part proves
the holder's key signed *this* presentation: a COSE_Sign1 with a detached payload over
``#6.24(["DeviceAuthentication", SessionTranscript, docType, DeviceNameSpacesBytes])``, made
with the key the MSO names. A ``deviceMac`` (proximity flows) is checked only when the caller
has the session's EMacKey; over OpenID4VP there is none, so it never passes there.

A wallet builds its response with :func:`present`: only the elements asked for travel.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from service.core.credential import StatusReference
from service.core.mdoc import cose
from service.core.mdoc.cbor import (
    DEFAULT_LIMITS,
    CBORError,
    CBORLimits,
    decode,
    decode_embedded,
    embed,
    encode,
)
from service.core.mdoc.issuer_signed import check_issuer_signed, items_of
from service.core.reasons import Failure, Reason, VerificationFailure

__all__ = [
    "DEVICE_RESPONSE_VERSION",
    "DocumentInspection",
    "device_authentication_bytes",
    "inspect_device_response",
    "present",
]

DEVICE_RESPONSE_VERSION: Final = "1.0"
MAX_DOCUMENTS: Final = 8


@dataclass(frozen=True, slots=True, kw_only=True)
class DocumentInspection:
    """One document's checks; ``anchor`` is None until the issuer signature held."""

    failures: tuple[Failure, ...]
    doctype: str | None = None
    anchor: x509.Certificate | None = None
    elements: dict[str, dict[str, Any]] | None = None
    valid_until: int | None = None
    status_ref: StatusReference | None = None
    device_bound: bool = False

    @property
    def signature_verified(self) -> bool:
        return self.anchor is not None


def device_authentication_bytes(
    transcript: Any, doctype: str, device_namespaces: cbor2.CBORTag
) -> bytes:
    """DeviceAuthenticationBytes, the detached payload of the device signature."""
    return encode(embed(["DeviceAuthentication", transcript, doctype, device_namespaces]))


def present(
    issuer_signed: Mapping[str, Any],
    *,
    doctype: str,
    disclose: Mapping[str, Sequence[str]],
    device_key: ec.EllipticCurvePrivateKey,
    transcript: Any,
) -> bytes:
    """A DeviceResponse with one document holding only the ``disclose``d elements
    (namespace → element identifiers), device-signed over ``transcript``."""
    kept: dict[str, list[cbor2.CBORTag]] = {}
    for namespace, items in items_of(issuer_signed.get("nameSpaces", {})).items():
        wanted = set(disclose.get(namespace, ()))
        chosen = [item.wrapped for item in items if item.element_identifier in wanted]
        if chosen:
            kept[namespace] = chosen
    device_namespaces = embed({})
    signature = cose.sign1(
        None,
        device_key,
        detached=device_authentication_bytes(transcript, doctype, device_namespaces),
    )
    document = {
        "docType": doctype,
        "issuerSigned": {"nameSpaces": kept, "issuerAuth": issuer_signed["issuerAuth"]},
        "deviceSigned": {
            "nameSpaces": device_namespaces,
            "deviceAuth": {"deviceSignature": signature.array()},
        },
    }
    return encode({"version": DEVICE_RESPONSE_VERSION, "documents": [document], "status": 0})


def inspect_device_response(
    data: bytes,
    *,
    transcript: Any,
    anchors: Sequence[x509.Certificate],
    now: int,
    clock_skew: int = 60,
    mac_key: bytes | None = None,
    limits: CBORLimits = DEFAULT_LIMITS,
) -> list[DocumentInspection]:
    """Check every document of a DeviceResponse. Raises :class:`VerificationFailure` when the
    response itself is unreadable; a document's own failures are in its inspection."""
    response = decode(data, limits=limits)
    if not isinstance(response, dict):
        raise CBORError(Reason.CBOR_WRONG_TYPE, "DeviceResponse is not a map")
    if response.get("version") != DEVICE_RESPONSE_VERSION:
        raise VerificationFailure(Reason.MDOC_MALFORMED, "DeviceResponse version")
    if response.get("status") != 0:
        raise VerificationFailure(Reason.WALLET_ERROR, "DeviceResponse status is not OK")
    documents = response.get("documents")
    if not isinstance(documents, list):
        raise CBORError(Reason.CBOR_WRONG_TYPE, "documents is not an array")
    if not documents or len(documents) > MAX_DOCUMENTS:
        raise VerificationFailure(Reason.MDOC_MALFORMED, "no documents, or too many")
    return [
        _inspect_document(
            document,
            transcript=transcript,
            anchors=anchors,
            now=now,
            clock_skew=clock_skew,
            mac_key=mac_key,
        )
        for document in documents
    ]


def _inspect_document(document: Any, **kwargs: Any) -> DocumentInspection:
    try:
        return _check_document(document, **kwargs)
    except VerificationFailure as failure:
        return DocumentInspection(failures=(failure.failure,))


def _check_document(
    document: Any,
    *,
    transcript: Any,
    anchors: Sequence[x509.Certificate],
    now: int,
    clock_skew: int,
    mac_key: bytes | None,
) -> DocumentInspection:
    if not isinstance(document, dict):
        raise CBORError(Reason.CBOR_WRONG_TYPE, "document is not a map")
    doctype, device_signed = document.get("docType"), document.get("deviceSigned")
    if not isinstance(doctype, str) or not isinstance(device_signed, dict):
        raise CBORError(Reason.CBOR_WRONG_TYPE, "docType or deviceSigned")
    checked = check_issuer_signed(
        document.get("issuerSigned"),
        doctype=doctype,
        anchors=anchors,
        now=now,
        clock_skew=clock_skew,
    )
    failures = list(checked.failures)
    device_failure = _device_auth_failure(
        device_signed,
        doctype=doctype,
        transcript=transcript,
        device_key=checked.device_key,
        mac_key=mac_key,
    )
    if device_failure is not None:
        failures.append(device_failure)
    return DocumentInspection(
        failures=tuple(failures),
        doctype=checked.doctype,
        anchor=checked.anchor,
        elements=checked.elements,
        valid_until=checked.valid_until,
        status_ref=checked.status_ref,
        device_bound=device_failure is None,
    )


def _device_auth_failure(
    device_signed: Mapping[str, Any],
    *,
    doctype: str,
    transcript: Any,
    device_key: ec.EllipticCurvePublicKey,
    mac_key: bytes | None,
) -> Failure | None:
    try:
        namespaces = device_signed.get("nameSpaces")
        inner, _ = decode_embedded(namespaces)
        if not isinstance(namespaces, cbor2.CBORTag) or not isinstance(inner, dict):
            raise CBORError(Reason.CBOR_WRONG_TYPE, "DeviceNameSpaces is not a map")
        auth = device_signed.get("deviceAuth")
        if not isinstance(auth, dict) or len(auth) != 1:
            raise VerificationFailure(Reason.MDOC_MALFORMED, "deviceAuth")
        payload = device_authentication_bytes(transcript, doctype, namespaces)
        if "deviceSignature" in auth:
            signature = cose.parse_sign1(auth["deviceSignature"], tagged=None)
            if signature.payload is not None:
                raise VerificationFailure(Reason.MDOC_MALFORMED, "device signature not detached")
            try:
                signature.verify(device_key, detached=payload)
            except VerificationFailure as failure:
                if failure.reason is Reason.INVALID_SIGNATURE:
                    raise VerificationFailure(Reason.INVALID_DEVICE_SIGNATURE) from None
                raise
            return None
        if "deviceMac" in auth:
            if mac_key is None:
                raise VerificationFailure(
                    Reason.INVALID_DEVICE_SIGNATURE, "deviceMac needs a session key"
                )
            protected_bytes, protected, tag = cose.parse_mac0(auth["deviceMac"])
            cose.verify_mac0(protected_bytes, protected, tag, key=mac_key, payload=payload)
            return None
        raise VerificationFailure(Reason.MDOC_MALFORMED, "deviceAuth")
    except VerificationFailure as failure:
        return failure.failure
