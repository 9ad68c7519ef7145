"""The trust list's ``allow_private_addresses``: off unless an issuer's entry says so."""

from __future__ import annotations

from typing import Any

import pytest

from service.core.keys import generate_signing_key, public_jwk
from service.keyring.trust_list import TrustListError, parse_trust_list

KEY = generate_signing_key("ES256")


def _entry(**extra: Any) -> dict[str, Any]:
    return {
        "issuers": [
            {
                "issuer": "https://id.example.org",
                "credential_types": ["https://id.example.org/types/pid"],
                "status_hosts": ["status.example.org"],
                "jwks": {"keys": [{**public_jwk(KEY.key), "kid": KEY.kid}]},
                **extra,
            }
        ]
    }


def test_private_status_addresses_are_refused_unless_the_entry_allows_them() -> None:
    assert parse_trust_list(_entry())["https://id.example.org"].private_status_hosts is False
    allowed = parse_trust_list(_entry(allow_private_addresses=True))
    assert allowed["https://id.example.org"].private_status_hosts is True


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_allow_private_addresses_must_be_a_boolean(value: Any) -> None:
    with pytest.raises(TrustListError, match="allow_private_addresses must be true or false"):
        parse_trust_list(_entry(allow_private_addresses=value))
