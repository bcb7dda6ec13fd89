"""Credential encryption: round trip, tamper evidence, rotation, key file."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from service.store.crypto import (
    CredentialCipher,
    DecryptionError,
    generate_key,
    load_or_create_key_file,
    parse_keys,
)


def test_round_trip_hides_the_secret() -> None:
    cipher = CredentialCipher(parse_keys(generate_key()))
    token = cipher.encrypt("cal_live_supersecret", context="conn-1")
    assert "supersecret" not in token
    assert cipher.decrypt(token, context="conn-1") == "cal_live_supersecret"
    # Same plaintext twice gives different tokens (random nonce).
    assert cipher.encrypt("cal_live_supersecret", context="conn-1") != token


def test_context_binds_the_token_to_its_row() -> None:
    cipher = CredentialCipher(parse_keys(generate_key()))
    token = cipher.encrypt("secret", context="conn-1")
    with pytest.raises(DecryptionError):
        cipher.decrypt(token, context="conn-2")


def test_tampering_is_detected() -> None:
    cipher = CredentialCipher(parse_keys(generate_key()))
    token = cipher.encrypt("secret", context="c")
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    with pytest.raises(DecryptionError):
        cipher.decrypt(flipped, context="c")
    with pytest.raises(DecryptionError):
        cipher.decrypt("garbage", context="c")


def test_rotation_first_key_encrypts_all_keys_decrypt() -> None:
    old, new = generate_key(), generate_key()
    before = CredentialCipher(parse_keys(old))
    token_old = before.encrypt("refresh-token", context="c")
    rotated = CredentialCipher(parse_keys(f"{new},{old}"))
    assert rotated.decrypt(token_old, context="c") == "refresh-token"
    assert not rotated.is_current(token_old)
    token_new = rotated.encrypt("refresh-token", context="c")
    assert rotated.is_current(token_new)
    # Once the old key is retired, only new tokens decrypt.
    retired = CredentialCipher(parse_keys(new))
    assert retired.decrypt(token_new, context="c") == "refresh-token"
    with pytest.raises(DecryptionError):
        retired.decrypt(token_old, context="c")


def test_bad_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        parse_keys("c2hvcnQ=")
    with pytest.raises(ValueError, match="at least one"):
        CredentialCipher([])


def test_key_file_is_created_once_with_private_mode(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "credentials.key"
    first = load_or_create_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key_file(path) == first
    assert len(parse_keys(first)) == 1
