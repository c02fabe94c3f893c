"""Stored secrets are sealed with AES-256-GCM, bound to their row, under rotatable keys."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from backend.sealing import PREFIX, Sealer, SealError, development_key, new_key_text, parse_key

OLD, NEW = parse_key(new_key_text()), parse_key(new_key_text())
ROW = "ticket_webhook_secrets:tenant-a:endpoint-1"


def test_a_sealed_value_opens_for_its_row_only() -> None:
    sealer = Sealer(NEW)
    sealed = sealer.seal("whsec_c2VjcmV0", ROW)
    assert sealed.startswith(PREFIX) and "c2VjcmV0" not in sealed
    assert sealer.open(sealed, ROW) == "whsec_c2VjcmV0"
    assert sealer.seal("whsec_c2VjcmV0", ROW) != sealed  # a fresh nonce every time
    with pytest.raises(SealError):
        sealer.open(sealed, "ticket_webhook_secrets:tenant-b:endpoint-1")  # copied to another tenant's row


def test_tampering_and_unknown_keys_are_refused() -> None:
    sealed = Sealer(NEW).seal("whsec_x", ROW)
    head, _, payload = sealed.rpartition(":")
    raw = bytearray(base64.urlsafe_b64decode(payload))
    raw[-1] ^= 1
    for broken in (f"{head}:{base64.urlsafe_b64encode(bytes(raw)).decode()}", f"{head}:!!!", "whsec_plain"):
        with pytest.raises(SealError):
            Sealer(NEW).open(broken, ROW)
    with pytest.raises(SealError):
        Sealer(OLD).open(sealed, ROW)


def test_rotation_opens_old_values_and_tells_which_to_seal_again() -> None:
    old_sealed = Sealer(OLD).seal("whsec_old", ROW)
    rotated = Sealer(NEW, previous=[OLD])
    assert rotated.open(old_sealed, ROW) == "whsec_old"
    assert not rotated.is_current(old_sealed)
    assert rotated.is_current(rotated.seal("whsec_old", ROW))


@pytest.mark.parametrize("text", ["", "CHANGE-ME", base64.b64encode(b"short").decode(), "a" * 44 + "=="])
def test_keys_must_be_32_bytes_of_base64(text: str) -> None:
    with pytest.raises(ValueError):
        parse_key(text)


def test_standard_and_url_safe_base64_both_work() -> None:
    raw = bytes(range(250, 256)) + bytes(26)
    assert parse_key(base64.b64encode(raw).decode()) == raw
    assert parse_key(base64.urlsafe_b64encode(raw).decode().rstrip("=")) == raw


def test_the_development_key_is_made_once_and_kept_private(tmp_path: Path) -> None:
    key = development_key(tmp_path)
    assert development_key(tmp_path) == key and len(key) == 32
    assert (tmp_path / "secrets.key").stat().st_mode & 0o777 == 0o600
