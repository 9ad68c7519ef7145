"""An mdoc presentation to the same :class:`~service.core.verify.Inspection` an SD-JWT VC gives.

A relying party gets one verdict shape whatever the format: ``issuer`` names the trust anchor
the document signer's chain reached (Thiqa's own issuer URL for Thiqa's IACA), ``vct`` carries
the docType, ``claims`` the issuer-signed elements as ``{namespace: {element: value}}`` in
JSON terms (full-dates and tdates as ISO 8601 text, byte strings as base64url). The status is
added by :func:`service.core.verify.conclude`, exactly as for SD-JWT VCs.

One presentation answers one credential query (HAIP 1.0 §5.3.1): a DeviceResponse with more
than one document is refused here.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import cbor2
from cryptography import x509

from service.core.mdoc.cbor import DEFAULT_LIMITS, CBORLimits
from service.core.mdoc.device_response import inspect_device_response
from service.core.reasons import Failure, Reason, VerificationFailure
from service.core.verify import Inspection

__all__ = ["MdocAnchor", "inspect_mdoc", "jsonable"]


@dataclass(frozen=True, slots=True)
class MdocAnchor:
    """A trusted IACA, and the issuer identifier verdicts name for the mdocs under it."""

    certificate: x509.Certificate
    issuer: str
    #: DocTypes this IACA may sign for; empty: any.
    doctypes: frozenset[str] = frozenset()


def jsonable(value: Any) -> Any:
    """An element value in JSON terms, so verdicts are JSON like an SD-JWT VC's claims."""
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.urlsafe_b64encode(value).rstrip(b"=").decode("ascii")
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, cbor2.CBORTag):
        return jsonable(value.value)
    if isinstance(value, float) and value != value:  # NaN has no JSON form
        return None
    return value


def inspect_mdoc(
    device_response: bytes,
    *,
    transcript: Any,
    anchors: Sequence[MdocAnchor],
    now: int,
    clock_skew: int = 60,
    doctype: str | None = None,
    limits: CBORLimits = DEFAULT_LIMITS,
) -> Inspection:
    """Every check of a one-document DeviceResponse that needs no store. Never raises."""
    try:
        documents = inspect_device_response(
            device_response,
            transcript=transcript,
            anchors=[a.certificate for a in anchors],
            now=now,
            clock_skew=clock_skew,
            limits=limits,
        )
    except VerificationFailure as failure:
        return Inspection(failures=(failure.failure,))
    if len(documents) != 1:
        return Inspection(
            failures=(Failure.of(Reason.MDOC_MALFORMED, "one document per presentation"),)
        )
    document = documents[0]
    if not document.signature_verified:
        return Inspection(failures=document.failures)
    anchor = next(a for a in anchors if a.certificate == document.anchor)
    failures = list(document.failures)
    if doctype is not None and document.doctype != doctype:
        failures.append(Failure.of(Reason.DOCTYPE_MISMATCH, "not the requested docType"))
    if anchor.doctypes and document.doctype not in anchor.doctypes:
        failures.append(Failure.of(Reason.UNTRUSTED_TYPE))
    return Inspection(
        failures=tuple(failures),
        issuer=anchor.issuer,
        vct=document.doctype,
        claims=jsonable(document.elements or {}),
        expires_at=document.valid_until,
        status_ref=document.status_ref,
        key_bound=document.device_bound,
    )
