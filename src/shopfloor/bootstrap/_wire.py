"""The secure bootstrap exchange, as pure functions shared by server and device.

    challenge  = 32 random bytes (sent base64url without padding)
    context    = "shopfloor-bootstrap-v1" 0x00 external_id(UTF-8) 0x00 challenge
    k_auth     = HKDF-SHA256(ikm=external_key(UTF-8), salt=challenge,
                             info="shopfloor-bootstrap-v1 auth", length=32)
    k_enc      = HKDF-SHA256(... info="shopfloor-bootstrap-v1 enc" ...)
    proof      = HMAC-SHA256(k_auth, context)                       device → server
    ciphertext = AES-256-GCM(k_enc, nonce(12 random bytes), document, aad=context)

Both keys depend on the challenge, so an answer recorded for one challenge opens under
no other; GCM's tag makes any changed byte of nonce or ciphertext fail to open.
docs/bootstrap.md states the same for implementers in other languages.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = [
    "CHALLENGE_BYTES",
    "NONCE_BYTES",
    "PROTOCOL",
    "ExchangeKeys",
    "b64decode",
    "b64encode",
    "context",
    "derive_keys",
    "new_challenge",
    "open_document",
    "seal_document",
]

PROTOCOL = b"shopfloor-bootstrap-v1"
CHALLENGE_BYTES = 32
NONCE_BYTES = 12


def b64encode(raw: bytes) -> str:
    """base64url (RFC 4648 §5) without padding."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64decode(text: str) -> bytes:
    """base64url with or without padding; ValueError when it is not."""
    try:
        data = text.encode("ascii")
        return base64.b64decode(data + b"=" * (-len(data) % 4), altchars=b"-_", validate=True)
    except (UnicodeEncodeError, binascii.Error) as exc:
        raise ValueError("not base64url") from exc


def new_challenge() -> bytes:
    return secrets.token_bytes(CHALLENGE_BYTES)


def context(external_id: str, challenge: bytes) -> bytes:
    """The bytes the proof signs and the answer is bound to (GCM's associated data)."""
    return PROTOCOL + b"\x00" + external_id.encode() + b"\x00" + challenge


@dataclass(frozen=True, slots=True)
class ExchangeKeys:
    auth: bytes
    enc: bytes
    context: bytes

    def proof(self) -> bytes:
        return hmac.digest(self.auth, self.context, "sha256")

    def proof_matches(self, proof: bytes) -> bool:
        return hmac.compare_digest(self.proof(), proof)


def _hkdf(ikm: bytes, salt: bytes, purpose: bytes) -> bytes:
    info = PROTOCOL + b" " + purpose
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


def derive_keys(external_id: str, external_key: str, challenge: bytes) -> ExchangeKeys:
    if len(challenge) != CHALLENGE_BYTES:
        raise ValueError(f"a challenge is {CHALLENGE_BYTES} bytes")
    ikm = external_key.encode()
    return ExchangeKeys(
        auth=_hkdf(ikm, challenge, b"auth"),
        enc=_hkdf(ikm, challenge, b"enc"),
        context=context(external_id, challenge),
    )


def seal_document(
    keys: ExchangeKeys, document: bytes, nonce: bytes | None = None
) -> dict[str, str]:
    """The server's answer: `{"nonce", "ciphertext"}` (ciphertext ends with the 16-byte tag).

    `nonce` is for test vectors only; a fresh random one is drawn otherwise.
    """
    nonce = secrets.token_bytes(NONCE_BYTES) if nonce is None else nonce
    sealed = AESGCM(keys.enc).encrypt(nonce, document, keys.context)
    return {"nonce": b64encode(nonce), "ciphertext": b64encode(sealed)}


def open_document(keys: ExchangeKeys, nonce: bytes, ciphertext: bytes) -> bytes:
    """The document, or ValueError when any byte was changed (or another challenge's)."""
    if len(nonce) != NONCE_BYTES:
        raise ValueError(f"a nonce is {NONCE_BYTES} bytes")
    try:
        return AESGCM(keys.enc).decrypt(nonce, ciphertext, keys.context)
    except InvalidTag as exc:
        raise ValueError("the answer does not open with this challenge's key") from exc
