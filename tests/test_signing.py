"""Signature checks shared by the server, the hand-over package and `verify` (V6)."""

from __future__ import annotations

import pytest

from protocols.signing import SigningError, load_jwk, statement, verify

from .signing_helpers import BrowserKey, b64url

HASH = "ab" * 32


def test_a_browser_signature_verifies_and_binds_the_document() -> None:
    browser = BrowserKey()
    key = load_jwk(browser.jwk)
    assert len(key.fingerprint) == 64 and "ext" not in key.jwk
    signed = statement("approve", 7, "12", HASH)
    verify(key, browser.sign(signed), signed)
    for other in (statement("sign", 7, "12", HASH), statement("approve", 8, "12", HASH),
                  statement("approve", 7, "day", HASH), statement("approve", 7, "12", "cd" * 32)):
        with pytest.raises(SigningError, match="does not match"):
            verify(key, browser.sign(signed), other)


def test_another_key_does_not_verify() -> None:
    signed = statement("sign", 1, "day", HASH)
    with pytest.raises(SigningError, match="does not match"):
        verify(load_jwk(BrowserKey().jwk), BrowserKey().sign(signed), signed)


@pytest.mark.parametrize(("jwk", "problem"), [
    ("x", "JWK object"),
    ({"kty": "RSA", "n": "x", "e": "AQAB"}, "P-256"),
    ({"kty": "EC", "crv": "P-384", "x": "a", "y": "b"}, "P-256"),
    ({"kty": "EC", "crv": "P-256", "x": b64url(b"1" * 32), "y": b64url(b"2" * 32)}, "curve"),
    ({"kty": "EC", "crv": "P-256", "x": b64url(b"1" * 31), "y": b64url(b"2" * 32)}, "32 bytes"),
    ({"kty": "EC", "crv": "P-256", "x": "!!", "y": "??"}, "base64url"),
])
def test_bad_keys_are_refused_clearly(jwk: object, problem: str) -> None:
    with pytest.raises(SigningError, match=problem):
        load_jwk(jwk)


def test_a_private_key_is_refused() -> None:
    jwk = {**BrowserKey().jwk, "d": b64url(b"3" * 32)}
    with pytest.raises(SigningError, match="private"):
        load_jwk(jwk)


def test_malformed_signatures_are_refused() -> None:
    key = load_jwk(BrowserKey().jwk)
    with pytest.raises(SigningError, match="64 bytes"):
        verify(key, b64url(b"x" * 70), b"m")
    with pytest.raises(SigningError, match="base64url"):
        verify(key, "***", b"m")
