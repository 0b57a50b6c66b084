"""Thing keys: random, looked up by keyed hash, stored encrypted.

- a key is 192 random bits (`secrets.token_urlsafe(24)`);
- the database holds HMAC-SHA256(key) for look-up (a fast hash is right for random
  keys of this length: there is nothing to brute-force) and the key encrypted with
  AES-GCM, so authorised users can see it again and brokers can be re-synced;
- both HMAC and AES keys are derived (HKDF) from a secret in the data dir, never in the
  database.
"""

from __future__ import annotations

import base64
import hmac
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_BYTES = 24


def _derive(secret: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(secret)


class ThingKeys:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < 32:
            raise ValueError("the thing-key secret must hold at least 32 bytes")
        self._mac_key = _derive(secret, b"shopfloor thing-key digest")
        self._aead = AESGCM(_derive(secret, b"shopfloor thing-key encryption"))

    def generate(self) -> str:
        return secrets.token_urlsafe(KEY_BYTES)

    def digest(self, key: str) -> str:
        # The one-shot C implementation: several times faster than hmac.new() per key.
        return hmac.digest(self._mac_key, key.encode(), "sha256").hex()

    def matches(self, key: str, digest: str) -> bool:
        return hmac.compare_digest(self.digest(key), digest)

    def encrypt(self, key: str) -> str:
        nonce = secrets.token_bytes(12)
        sealed = self._aead.encrypt(nonce, key.encode(), b"thing-key")
        return base64.urlsafe_b64encode(nonce + sealed).decode()

    def decrypt(self, ciphertext: str) -> str:
        raw = base64.urlsafe_b64decode(ciphertext)
        try:
            return self._aead.decrypt(raw[:12], raw[12:], b"thing-key").decode()
        except InvalidTag as exc:
            raise ValueError("thing key cannot be decrypted with this data dir's secret") from exc
