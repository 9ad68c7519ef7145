"""The SessionTranscript an mdoc signs over OpenID4VP (OpenID4VP 1.0 Appendix B.2.6).

The device signature binds a DeviceResponse to one request: the verifier's client id, the
request's nonce, the response URI and, when the response is encrypted, the thumbprint of the
verifier's encryption key. Over the Digital Credentials API the origin takes the place of the
client id and response URI. Both parties build the transcript from what they know; a response
made for another request, verifier or key does not verify.
"""

from __future__ import annotations

import hashlib
from typing import Any

from service.core.mdoc.cbor import encode

__all__ = ["dc_api_session_transcript", "redirect_session_transcript"]


def redirect_session_transcript(
    *, client_id: str, nonce: str, response_uri: str, jwk_thumbprint: bytes | None = None
) -> list[Any]:
    """``[null, null, ["OpenID4VPHandover", sha256(cbor(HandoverInfo))]]`` (B.2.6.1)."""
    info = encode([client_id, nonce, jwk_thumbprint, response_uri])
    return [None, None, ["OpenID4VPHandover", hashlib.sha256(info).digest()]]


def dc_api_session_transcript(
    *, origin: str, nonce: str, jwk_thumbprint: bytes | None = None
) -> list[Any]:
    """``[null, null, ["OpenID4VPDCAPIHandover", sha256(cbor([origin, nonce, jkt]))]]``
    (B.2.6.2)."""
    info = encode([origin, nonce, jwk_thumbprint])
    return [None, None, ["OpenID4VPDCAPIHandover", hashlib.sha256(info).digest()]]
