"""mdoc benchmark: issuing, presenting and checking an ISO/IEC 18013-5 mdoc, in the core.

    .venv/bin/python bench/mdoc.py

Pure computation, no I/O (the status lookup is the same Redis call as for SD-JWT VCs and is
measured by bench/verify.py). A throwaway IACA and document signer (P-256) are made at start;
the national ID carries 11 elements, 2 of which are presented. Prints one line per row:
median and p95 latency over the timed operations, after a warm-up. Asserts nothing beyond
checking, before timing, that the presentation verifies with no failure but its status.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from service.core.credential import StatusReference
from service.core.mdoc import issuer_signed, national_id
from service.core.mdoc.cbor import decode, encode
from service.core.mdoc.device_response import present
from service.core.mdoc.handover import redirect_session_transcript
from service.core.mdoc.verify import MdocAnchor, inspect_mdoc
from service.services.seeds import load_citizens

#: Synthetic citizen 0 of seeds/citizens.json (never a real person).
CLAIMS = load_citizens()[0]
N = 300


def name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _pki() -> tuple[x509.Certificate, x509.Certificate, ec.EllipticCurvePrivateKey]:
    now = datetime.now(UTC)
    iaca_key, ds_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    iaca = (
        x509.CertificateBuilder()
        .subject_name(name("Bench IACA"))
        .issuer_name(name("Bench IACA"))
        .public_key(iaca_key.public_key())
        .serial_number(1)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(iaca_key.public_key()), False)
        .sign(iaca_key, hashes.SHA256())
    )
    signer = (
        x509.CertificateBuilder()
        .subject_name(name("Bench DS"))
        .issuer_name(iaca.subject)
        .public_key(ds_key.public_key())
        .serial_number(2)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False), True
        )
        .add_extension(
            x509.ExtendedKeyUsage([national_id_eku()]),
            critical=True,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(iaca_key.public_key()), False
        )
        .sign(iaca_key, hashes.SHA256())
    )
    return iaca, signer, ds_key


def national_id_eku() -> x509.ObjectIdentifier:
    return x509.ObjectIdentifier("1.0.18013.5.1.2")


def _time(name: str, operation: Callable[[], object]) -> None:
    for _ in range(20):
        operation()
    samples = []
    for _ in range(N):
        start = time.perf_counter_ns()
        operation()
        samples.append(time.perf_counter_ns() - start)
    samples.sort()
    median = statistics.median(samples) / 1e6
    p95 = samples[int(0.95 * (len(samples) - 1))] / 1e6
    print(f"{name:<10} median {median:6.2f} ms   p95 {p95:6.2f} ms   n {N}")


def main() -> None:
    iaca, signer, ds_key = _pki()
    device = ec.generate_private_key(ec.SECP256R1())
    now = int(time.time())
    anchors = [MdocAnchor(iaca, "https://bench.example")]
    transcript = redirect_session_transcript(
        client_id="x509_hash:bench", nonce="n", response_uri="https://bench.example/r"
    )

    def issue() -> dict[str, Any]:
        return issuer_signed.issue(
            national_id.elements_from_claims(CLAIMS, issued_at=now, expires_at=now + 86_400),
            doctype=national_id.DOCTYPE,
            device_key=device.public_key(),
            signer_key=ds_key,
            x5chain=[signer],
            signed=now,
            valid_until=now + 86_400,
            status=StatusReference(uri="https://bench.example/status-lists/a", idx=1),
        )

    issued = issue()
    disclose = {national_id.NAMESPACE: ["given_name_national_character", "birth_date"]}

    def presentation() -> bytes:
        return present(
            issued,
            doctype=national_id.DOCTYPE,
            disclose=disclose,
            device_key=device,
            transcript=transcript,
        )

    response = presentation()
    inspection = inspect_mdoc(response, transcript=transcript, anchors=anchors, now=now)
    assert inspection.failures == (), inspection.failures
    print(
        f"IssuerSigned {len(encode(issued))} B, DeviceResponse {len(response)} B; "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}"
    )
    _time("issue", issue)
    _time("present", presentation)
    _time("decode", lambda: decode(response))
    _time(
        "verify",
        lambda: inspect_mdoc(response, transcript=transcript, anchors=anchors, now=now),
    )


if __name__ == "__main__":
    main()
