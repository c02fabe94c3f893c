"""Secrets the service has to use again (webhook signing secrets) are stored sealed.

A signing secret cannot be hashed like a password: the worker needs it to sign. So it is
encrypted with AES-256-GCM under a key that never touches the database (`SECRETS_KEY`, or in
development a key file under `DATA_DIR`): a leaked dump or backup does not let anyone sign
webhooks in a town's name. The row it belongs to is bound in as associated data, so a sealed
value copied into another tenant's or endpoint's row does not open. Each value names its key
(a short fingerprint), so keys can be rotated: the new key seals, `SECRETS_KEY_PREVIOUS` still
opens what the old one sealed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "sealed:v1:"
KEY_BYTES = 32
_NONCE_BYTES = 12


class SealError(Exception):
    """A sealed value that cannot be opened (unknown key, wrong row, tampered with)."""


def parse_key(text: str) -> bytes:
    """A key as configured: 32 bytes, base64 (standard or URL-safe, padding optional)."""
    cleaned = text.strip()
    try:
        key = base64.urlsafe_b64decode(cleaned.replace("+", "-").replace("/", "_") + "=" * (-len(cleaned) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not base64") from None
    if len(key) != KEY_BYTES:
        raise ValueError(f"must be {KEY_BYTES} bytes (base64 of `openssl rand 32`), not {len(key)}")
    return key


def new_key_text() -> str:
    return base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode()


def development_key(data_dir: Path) -> bytes:
    """Development and tests: a key file made once under DATA_DIR (production sets SECRETS_KEY)."""
    path = data_dir / "secrets.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(new_key_text())
        tmp.chmod(0o600)
        tmp.replace(path)
    return parse_key(path.read_text())


def _fingerprint(key: bytes) -> str:
    return hashlib.sha256(b"buergerservice-sealing-key\x00" + key).hexdigest()[:16]


class Sealer:
    def __init__(self, key: bytes, previous: Sequence[bytes] = ()) -> None:
        self._current = (_fingerprint(key), AESGCM(key))
        self._keys = {_fingerprint(k): AESGCM(k) for k in (*previous, key)}

    def seal(self, plaintext: str, context: str) -> str:
        fingerprint, aead = self._current
        nonce = os.urandom(_NONCE_BYTES)
        sealed = aead.encrypt(nonce, plaintext.encode(), context.encode())
        return f"{PREFIX}{fingerprint}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def open(self, stored: str, context: str) -> str:
        if not stored.startswith(PREFIX):
            raise SealError("not a sealed value")
        fingerprint, _, payload = stored.removeprefix(PREFIX).partition(":")
        aead = self._keys.get(fingerprint)
        if aead is None:
            raise SealError("sealed with a key this instance does not have")
        try:
            raw = base64.urlsafe_b64decode(payload)
            return aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], context.encode()).decode()
        except (InvalidTag, binascii.Error, ValueError):
            raise SealError("does not open with this key and row") from None

    def is_current(self, stored: str) -> bool:
        """Sealed with today's key (else worth sealing again)."""
        return stored.startswith(f"{PREFIX}{self._current[0]}:")
