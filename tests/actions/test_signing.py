"""Request signatures and the receivers' verification helper."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from donjon.actions.signing import SignatureError, sign, verify_signature

BODY = b'{"eventId":"42"}'


def test_signature_is_hmac_sha256_of_time_dot_body() -> None:
    header = sign(BODY, ["key"], timestamp=1700000000)
    expected = hmac.new(b"key", b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"
    assert verify_signature(BODY, header, "key", now=1700000100) == 1700000000


def test_a_changed_body_or_another_key_fails() -> None:
    header = sign(BODY, ["key"])
    with pytest.raises(SignatureError, match="no signature matches"):
        verify_signature(BODY + b" ", header, "key")
    with pytest.raises(SignatureError, match="no signature matches"):
        verify_signature(BODY, header, "other")


def test_signatures_older_than_the_tolerance_fail() -> None:
    header = sign(BODY, ["key"], timestamp=1700000000)
    with pytest.raises(SignatureError, match="300s"):
        verify_signature(BODY, header, "key", now=1700000301)
    verify_signature(BODY, header, "key", now=1700000299)
    with pytest.raises(SignatureError):
        verify_signature(BODY, header, "key", now=1699999000)


def test_each_key_of_a_rotation_verifies() -> None:
    header = sign(BODY, ["new", "old"])
    verify_signature(BODY, header, "new")
    verify_signature(BODY, header, "old")


@pytest.mark.parametrize("header", [None, "", "v1=abc", "t=x,v1=abc", "t=1700000000"])
def test_malformed_headers_fail(header: str | None) -> None:
    with pytest.raises(SignatureError):
        verify_signature(BODY, header, "key", now=1700000000)
