"""The error taxonomy: every wire error is a class of ``service/errors.py`` with a code, a
status and a body style, and the registry (:func:`wire_errors`) sees each of them."""

from __future__ import annotations

import importlib
import pkgutil
import re

import pytest

import service
from service.errors import (
    BodyStyle,
    Conflict,
    DirectPostError,
    InvalidClaims,
    InvalidToken,
    OAuthError,
    PresentationRequestGone,
    RateLimited,
    ResponseStoreUnavailable,
    StateMismatch,
    StatusUnavailable,
    ThiqaError,
    Unauthenticated,
    wire_errors,
)


def _every_module_loaded() -> None:
    for module in pkgutil.walk_packages(service.__path__, "service."):
        if not module.name.endswith(".__main__"):  # runs the command line when imported
            importlib.import_module(module.name)


def _all_subclasses(base: type[ThiqaError]) -> list[type[ThiqaError]]:
    found = [base]
    for sub in base.__subclasses__():
        found += _all_subclasses(sub)
    return found


def test_every_error_class_lives_in_the_errors_module() -> None:
    _every_module_loaded()
    elsewhere = [
        f"{cls.__module__}.{cls.__qualname__}"
        for cls in _all_subclasses(ThiqaError)
        if cls.__module__ != "service.errors"
    ]
    assert elsewhere == []


def test_codes_are_unique_within_a_body_style() -> None:
    """Two errors never share a code in one style. A subclass that keeps its parent's code
    (adding a header, say) is that same error, not a second one."""
    seen: dict[tuple[BodyStyle, str], str] = {}
    for cls in wire_errors():
        if "code" not in cls.__dict__:
            continue
        key = (cls.style, cls.code)
        assert key not in seen, f"{cls.__name__} and {seen[key]} share {key}"
        seen[key] = cls.__name__


@pytest.mark.parametrize("cls", wire_errors(), ids=lambda cls: cls.__name__)
def test_each_error_states_code_status_title_and_style(cls: type[ThiqaError]) -> None:
    assert re.fullmatch(r"[a-z][a-z0-9_]*", cls.code)
    assert 400 <= cls.status <= 599
    assert cls.title
    assert cls.style is (BodyStyle.OAUTH if issubclass(cls, OAuthError) else BodyStyle.PROBLEM)
    if cls.style is BodyStyle.OAUTH:
        # error_description is restricted to printable ASCII (RFC 6749 §5.2).
        assert cls.title.isascii()
        assert all(0x20 <= ord(c) <= 0x7E for c in cls.title)


def test_groupings_are_never_answered_but_their_subclasses_are() -> None:
    listed = wire_errors()
    groupings = (Conflict, PresentationRequestGone, OAuthError, DirectPostError)
    for grouping in groupings:
        assert grouping not in listed
        assert grouping.__subclasses__()
        assert all(sub in listed or sub in groupings for sub in grouping.__subclasses__())
    assert ThiqaError in listed  # internal_error


def test_the_subclass_pattern_carries_detail_and_extra() -> None:
    error = InvalidClaims("claims.email: not defined", path="claims.email")
    assert (error.code, error.status, error.detail) == (
        "invalid_claims",
        422,
        "claims.email: not defined",
    )
    assert error.extra == {"path": "claims.email"}
    assert InvalidClaims().detail == InvalidClaims.title


def test_headers_belong_to_the_error() -> None:
    assert Unauthenticated().headers() == {"WWW-Authenticate": "Bearer"}
    assert RateLimited(retry_after=7).headers() == {"Retry-After": "7"}
    assert RateLimited(retry_after=7).extra == {"retry_after": 7}
    assert InvalidToken().headers() == {
        "WWW-Authenticate": 'Bearer error="invalid_token", error_description="'
        'The access token is missing, unknown, expired or used."'
    }
    assert InvalidClaims().headers() == {}


def test_a_direct_post_error_names_oauth_error_and_thiqa_code() -> None:
    assert (StateMismatch.error, StateMismatch.code) == ("invalid_request", "state_mismatch")
    assert (ResponseStoreUnavailable.error, ResponseStoreUnavailable.status) == (
        "temporarily_unavailable",
        503,
    )


def test_status_unavailable_carries_its_verdict() -> None:
    verdict = object()
    error = StatusUnavailable(verdict=verdict)
    assert error.verdict is verdict
    assert error.extra == {}  # nothing smuggled into the body's members
    assert (error.code, error.status) == ("status_unavailable", 503)
