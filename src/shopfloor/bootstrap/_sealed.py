"""External keys and client keys at rest: encrypted under the platform's bootstrap key.

The server must know an external key in clear to derive the secure exchange's keys
from it, so it is encrypted (AES-256-GCM), not hashed; a keyed digest (HMAC-SHA256)
beside it is what a presented key is compared with, in constant time. Both keys are
derived (HKDF) from 32 random bytes in the data dir's `secrets/` folder, never in the
database: a copy of the database alone shows no key. Each ciphertext's associated data
names its column and its thing, so ciphertexts moved between rows or columns do not open.
"""

from __future__ import annotations

import hmac
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ._wire import b64decode, b64encode

SECRET_FILE = "bootstrap-secret.bin"  # noqa: S105 - a file name, not a secret


def _derive(secret: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(secret)


class SealedFields:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < 32:
            raise ValueError("the bootstrap secret must hold at least 32 bytes")
        self._mac_key = _derive(secret, b"shopfloor bootstrap external-key digest")
        self._aead = AESGCM(_derive(secret, b"shopfloor bootstrap field encryption"))

    def digest(self, external_key: str) -> str:
        return hmac.digest(self._mac_key, external_key.encode(), "sha256").hex()

    def matches(self, external_key: str, digest: str) -> bool:
        return hmac.compare_digest(self.digest(external_key), digest)

    def seal(self, column: str, thing_id: str, value: str) -> str:
        """`value` encrypted for `column` of `thing_id`'s row; "" stays "" (no value)."""
        if not value:
            return ""
        nonce = secrets.token_bytes(12)
        sealed = self._aead.encrypt(nonce, value.encode(), _aad(column, thing_id))
        return b64encode(nonce + sealed)

    def open(self, column: str, thing_id: str, ciphertext: str) -> str:
        if not ciphertext:
            return ""
        raw = b64decode(ciphertext)
        try:
            return self._aead.decrypt(raw[:12], raw[12:], _aad(column, thing_id)).decode()
        except InvalidTag as exc:
            raise ValueError(
                f"{column} of {thing_id} does not open with this data dir's key"
            ) from exc


def _aad(column: str, thing_id: str) -> bytes:
    return f"shopfloor bootstrap {column} {thing_id}".encode()
