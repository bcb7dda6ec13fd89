"""Credentials at rest: AES-256-GCM with a key ring for rotation.

Token format ``v1.<key id>.<base64url(nonce || ciphertext)>``. The first key encrypts, every key
decrypts (its id picks it), so a new key is rolled in by putting it first and re-encrypting with
``python -m service rotate-credentials``. The caller passes a context (e.g. the connection id)
that is bound as associated data, so a ciphertext copied to another row fails to decrypt.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = "v1"


class DecryptionError(Exception):
    """The token is malformed, was made with an unknown key, or was tampered with."""


def _key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:8]


def generate_key() -> str:
    return base64.urlsafe_b64encode(AESGCM.generate_key(bit_length=256)).decode()


def parse_keys(text: str) -> list[bytes]:
    keys = []
    for item in text.replace("\n", ",").split(","):
        item = item.strip()
        if not item:
            continue
        raw = base64.urlsafe_b64decode(item + "=" * (-len(item) % 4))
        if len(raw) != 32:
            raise ValueError("encryption keys must be 32 bytes (base64 of an AES-256 key)")
        keys.append(raw)
    return keys


def load_or_create_key_file(path: Path) -> str:
    """The key file's contents, creating it (mode 0600) with a fresh key on first run."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(generate_key() + "\n")
    return path.read_text()


class CredentialCipher:
    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ValueError("at least one encryption key is needed")
        self._primary_id = _key_id(keys[0])
        self._keys = {_key_id(k): AESGCM(k) for k in keys}

    @classmethod
    def from_config(cls, keys_text: str, key_file: Path) -> CredentialCipher:
        return cls(parse_keys(keys_text or load_or_create_key_file(key_file)))

    def encrypt(self, plaintext: str, *, context: str) -> str:
        nonce = os.urandom(12)
        sealed = self._keys[self._primary_id].encrypt(nonce, plaintext.encode(), context.encode())
        body = base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
        return f"{_VERSION}.{self._primary_id}.{body}"

    def decrypt(self, token: str, *, context: str) -> str:
        try:
            version, key_id, body = token.split(".", 2)
            aead = self._keys[key_id]
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (ValueError, KeyError) as exc:
            raise DecryptionError("credential token is malformed or its key is unknown") from exc
        if version != _VERSION:
            raise DecryptionError(f"unknown credential token version {version!r}")
        try:
            return aead.decrypt(raw[:12], raw[12:], context.encode()).decode()
        except InvalidTag as exc:
            raise DecryptionError("credential token failed authentication") from exc

    def is_current(self, token: str) -> bool:
        """Whether the token was made with the primary key (False means: re-encrypt it)."""
        return token.split(".", 2)[1:2] == [self._primary_id]
