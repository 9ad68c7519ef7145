"""The OpenID4VCI issuing service's translation of the core's refusals into wire errors."""

from __future__ import annotations

from service.core.openid4vci import RequestProblem
from service.errors import BodyStyle
from service.services.openid4vci_issuer import REQUEST_ERRORS


def test_every_core_refusal_has_its_wire_error_with_the_same_code() -> None:
    assert set(REQUEST_ERRORS) == set(RequestProblem)
    for problem, error in REQUEST_ERRORS.items():
        assert error.code == problem.value
        assert error.style is BodyStyle.OAUTH
        assert error.status == 400
