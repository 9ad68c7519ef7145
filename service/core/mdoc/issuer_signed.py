"""IssuerSigned (ISO/IEC 18013-5 §9.1.2): the MSO an issuer signs, and checking one.

Issuing: every data element becomes an IssuerSignedItem ``{digestID, random, elementIdentifier,
elementValue}`` with a fresh 32-byte salt, wrapped in tag 24; the MSO lists the SHA-256 digest
of each wrapped item under its namespace, the holder's key as ``deviceKeyInfo``, the
``validityInfo`` and a ``status`` reference into a Token Status List. Digest ids are a random
permutation, so their order says nothing about the elements.

Checking runs in the order of :mod:`service.core.verify`: structure, the document signer's
chain, the issuer signature; until the signature holds the first failure ends the run. Then
every failure is collected: docType, validity, each element against its digest, the status
reference.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from service.core.credential import StatusReference
from service.core.mdoc import cose
from service.core.mdoc.cbor import CBORError, decode, decode_embedded, embed, encode
from service.core.mdoc.signer import parse_x5chain, verify_chain
from service.core.reasons import Failure, Reason, VerificationFailure

__all__ = [
    "DIGEST_ALGORITHM",
    "MSO_VERSION",
    "CheckedIssuerSigned",
    "IssuerSignedItem",
    "check_issuer_signed",
    "issue",
    "items_of",
]

MSO_VERSION: Final = "1.0"
DIGEST_ALGORITHM: Final = "SHA-256"
SALT_BYTES: Final = 32
MAX_ELEMENTS: Final = 256


@dataclass(frozen=True, slots=True)
class IssuerSignedItem:
    digest_id: int
    random: bytes
    element_identifier: str
    element_value: Any
    #: The tag-24 item exactly as received or made: what the digest is over.
    wrapped: cbor2.CBORTag = field(repr=False)


def _tdate(unix: int) -> datetime:
    return datetime.fromtimestamp(unix, UTC)


def issue(
    elements: Mapping[str, Mapping[str, Any]],
    *,
    doctype: str,
    device_key: ec.EllipticCurvePublicKey,
    signer_key: ec.EllipticCurvePrivateKey,
    x5chain: Sequence[x509.Certificate],
    signed: int,
    valid_until: int,
    status: StatusReference | None,
) -> dict[str, Any]:
    """IssuerSigned ``{nameSpaces, issuerAuth}`` as a CBOR-ready value.

    ``elements`` maps each namespace to its element identifiers and values, already checked;
    ``x5chain`` is the document signer's certificate first, without the IACA.
    """
    namespaces: dict[str, list[cbor2.CBORTag]] = {}
    digests: dict[str, dict[int, bytes]] = {}
    count = sum(len(v) for v in elements.values())
    ids = list(range(count))
    # A random permutation (Fisher-Yates with the system CSPRNG): ids reveal no order.
    for i in range(count - 1, 0, -1):
        j = secrets.randbelow(i + 1)
        ids[i], ids[j] = ids[j], ids[i]
    it = iter(ids)
    for namespace, values in elements.items():
        items = namespaces.setdefault(namespace, [])
        table = digests.setdefault(namespace, {})
        for identifier, value in values.items():
            digest_id = next(it)
            wrapped = embed(
                {
                    "digestID": digest_id,
                    "random": secrets.token_bytes(SALT_BYTES),
                    "elementIdentifier": identifier,
                    "elementValue": value,
                }
            )
            items.append(wrapped)
            table[digest_id] = hashlib.sha256(encode(wrapped)).digest()
    mso: dict[str, Any] = {
        "version": MSO_VERSION,
        "digestAlgorithm": DIGEST_ALGORITHM,
        "valueDigests": digests,
        "deviceKeyInfo": {"deviceKey": cose.cose_key(device_key)},
        "docType": doctype,
        "validityInfo": {
            "signed": _tdate(signed),
            "validFrom": _tdate(signed),
            "validUntil": _tdate(valid_until),
        },
    }
    if status is not None:
        mso["status"] = status.claim()
    chain = [c.public_bytes(serialization.Encoding.DER) for c in x5chain]
    issuer_auth = cose.sign1(
        encode(embed(mso)),
        signer_key,
        unprotected={cose.HEADER_X5CHAIN: chain[0] if len(chain) == 1 else chain},
    )
    return {"nameSpaces": namespaces, "issuerAuth": issuer_auth.array()}


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckedIssuerSigned:
    """What the issuer signed, once its signature holds, and the failures found after that."""

    failures: tuple[Failure, ...]
    doctype: str
    #: The anchor the chain reached (the IACA), to name the issuer.
    anchor: x509.Certificate
    elements: dict[str, dict[str, Any]]
    device_key: ec.EllipticCurvePublicKey
    valid_until: int | None
    status_ref: StatusReference | None


def items_of(namespaces: Any) -> dict[str, list[IssuerSignedItem]]:
    """The IssuerSignedItems of ``nameSpaces``, decoded strictly (structure only)."""
    if not isinstance(namespaces, dict):
        raise CBORError(Reason.CBOR_WRONG_TYPE, "nameSpaces is not a map")
    out: dict[str, list[IssuerSignedItem]] = {}
    total = 0
    for namespace, items in namespaces.items():
        if not isinstance(namespace, str) or not isinstance(items, list) or not items:
            raise CBORError(Reason.CBOR_WRONG_TYPE, "namespace entries")
        total += len(items)
        if total > MAX_ELEMENTS:
            raise VerificationFailure(Reason.TOO_LARGE, "too many data elements")
        parsed = out.setdefault(namespace, [])
        for wrapped in items:
            item, _ = decode_embedded(wrapped)
            if not isinstance(item, dict) or set(item) != {
                "digestID",
                "random",
                "elementIdentifier",
                "elementValue",
            }:
                raise VerificationFailure(Reason.MDOC_MALFORMED, "IssuerSignedItem members")
            digest_id, salt, identifier = (
                item["digestID"],
                item["random"],
                item["elementIdentifier"],
            )
            if (
                not isinstance(digest_id, int)
                or isinstance(digest_id, bool)
                or digest_id < 0
                or not isinstance(salt, bytes)
                or not isinstance(identifier, str)
            ):
                raise CBORError(Reason.CBOR_WRONG_TYPE, "IssuerSignedItem member types")
            if any(p.element_identifier == identifier for p in parsed):
                raise VerificationFailure(Reason.MDOC_MALFORMED, "element repeated")
            parsed.append(
                IssuerSignedItem(digest_id, salt, identifier, item["elementValue"], wrapped)
            )
    return out


def check_issuer_signed(
    issuer_signed: Any,
    *,
    doctype: str,
    anchors: Sequence[x509.Certificate],
    now: int,
    clock_skew: int = 60,
) -> CheckedIssuerSigned:
    """Check ``issuer_signed`` (decoded CBOR) against ``anchors`` at ``now``.

    Raises :class:`VerificationFailure` until the issuer signature holds; after that, every
    failure is in the result's ``failures``.
    """
    # 1. Structure.
    if not isinstance(issuer_signed, dict) or "issuerAuth" not in issuer_signed:
        raise CBORError(Reason.CBOR_WRONG_TYPE, "IssuerSigned is not a map with issuerAuth")
    if set(issuer_signed) - {"issuerAuth", "nameSpaces"}:
        raise VerificationFailure(Reason.MDOC_MALFORMED, "unknown IssuerSigned member")
    items = items_of(issuer_signed.get("nameSpaces", {}) or {})
    issuer_auth = cose.parse_sign1(issuer_signed["issuerAuth"])
    if issuer_auth.payload is None:
        raise VerificationFailure(Reason.MDOC_MALFORMED, "issuerAuth payload detached")
    # 2. The document signer: its chain to an anchor, then its signature.
    x5chain = issuer_auth.unprotected.get(cose.HEADER_X5CHAIN)
    if x5chain is None:
        x5chain = issuer_auth.protected.get(cose.HEADER_X5CHAIN)
    chain = parse_x5chain(x5chain)
    signer_key, anchor = verify_chain(chain, anchors=anchors, now=now)
    issuer_auth.verify(signer_key)
    # 3. The MSO it signed.
    mso = _parse_mso(issuer_auth.payload)

    failures: list[Failure] = []
    if mso["docType"] != doctype:
        failures.append(Failure.of(Reason.DOCTYPE_MISMATCH))
    valid_until, time_failures = _check_validity(mso["validityInfo"], now=now, skew=clock_skew)
    failures.extend(time_failures)
    elements: dict[str, dict[str, Any]] = {}
    value_digests = mso["valueDigests"]
    for namespace, parsed in items.items():
        table = value_digests.get(namespace)
        for item in parsed:
            expected = table.get(item.digest_id) if isinstance(table, dict) else None
            if not isinstance(expected, bytes):
                failures.append(Failure.of(Reason.ELEMENT_NOT_IN_MSO, item.element_identifier))
                continue
            actual = hashlib.sha256(encode(item.wrapped)).digest()
            if not hmac.compare_digest(actual, expected):
                failures.append(Failure.of(Reason.DIGEST_MISMATCH, item.element_identifier))
                continue
            elements.setdefault(namespace, {})[item.element_identifier] = item.element_value
    status_ref, status_failure = _status_reference(mso.get("status"))
    if status_failure is not None:
        failures.append(status_failure)
    return CheckedIssuerSigned(
        failures=tuple(failures),
        doctype=mso["docType"],
        anchor=anchor,
        elements=elements,
        device_key=cose.public_key_from_cose(mso["deviceKeyInfo"].get("deviceKey")),
        valid_until=valid_until,
        status_ref=status_ref,
    )


_MSO_MEMBERS: Final = {
    "version": str,
    "digestAlgorithm": str,
    "valueDigests": dict,
    "deviceKeyInfo": dict,
    "docType": str,
    "validityInfo": dict,
}


def _parse_mso(payload: bytes) -> dict[str, Any]:
    mso, _ = decode_embedded(decode(payload))
    if not isinstance(mso, dict):
        raise CBORError(Reason.CBOR_WRONG_TYPE, "MSO is not a map")
    for name, kind in _MSO_MEMBERS.items():
        if not isinstance(mso.get(name), kind):
            raise VerificationFailure(Reason.MDOC_MALFORMED, f"MSO {name}")
    if mso["version"] != MSO_VERSION:
        raise VerificationFailure(Reason.MDOC_MALFORMED, "MSO version")
    if mso["digestAlgorithm"] != DIGEST_ALGORITHM:
        raise VerificationFailure(Reason.UNSUPPORTED_ALGORITHM, "digest algorithm")
    return mso


def _unix(value: Any) -> int | None:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return int(value.timestamp())
    return None


def _check_validity(
    info: Mapping[str, Any], *, now: int, skew: int
) -> tuple[int | None, list[Failure]]:
    signed, valid_from, valid_until = (
        _unix(info.get("signed")),
        _unix(info.get("validFrom")),
        _unix(info.get("validUntil")),
    )
    if signed is None or valid_from is None or valid_until is None:
        return None, [Failure.of(Reason.MDOC_MALFORMED, "validityInfo")]
    if now >= valid_until + skew:
        return valid_until, [Failure.of(Reason.EXPIRED)]
    if valid_from > now + skew or signed > now + skew:
        return valid_until, [Failure.of(Reason.NOT_YET_VALID)]
    return valid_until, []


def _status_reference(status: Any) -> tuple[StatusReference | None, Failure | None]:
    if status is None:
        return None, Failure.of(Reason.INVALID_STATUS_REFERENCE, "no status")
    entry = status.get("status_list") if isinstance(status, dict) else None
    if not isinstance(entry, dict):
        return None, Failure.of(Reason.INVALID_STATUS_REFERENCE, "no status_list")
    idx, uri = entry.get("idx"), entry.get("uri")
    if not isinstance(idx, int) or isinstance(idx, bool) or idx < 0:
        return None, Failure.of(Reason.INVALID_STATUS_REFERENCE, "idx is not an index")
    if not isinstance(uri, str) or not uri:
        return None, Failure.of(Reason.INVALID_STATUS_REFERENCE, "uri missing")
    return StatusReference(uri=uri, idx=idx), None
