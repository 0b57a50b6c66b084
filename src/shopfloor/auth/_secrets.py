"""Secrets generated into the data dir on first start: never in the database.

A copy of the database alone therefore lets nobody publish as a thing nor mint tokens.
Files are created exclusively (two processes starting together agree on one secret)
with mode 0600 in a 0700 folder (and missing parents, the data dir, 0700 too).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shopfloor.core import private_dir


class SecretFiles:
    def __init__(self, data_dir: Path) -> None:
        self.folder = data_dir / "secrets"

    def signing_key(self) -> Ed25519PrivateKey:
        """The Ed25519 key that signs Shopfloor bearer tokens."""
        pem = self._read_or_create(
            "token-signing-key.pem",
            lambda: Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{self.folder / 'token-signing-key.pem'} is not an Ed25519 key")
        return key

    def thing_key_secret(self) -> bytes:
        """32 random bytes from which thing-key hashing and encryption keys are derived."""
        return self._read_or_create("thing-key-secret.bin", lambda: secrets.token_bytes(32))

    def random_secret(self, name: str) -> bytes:
        """32 random bytes kept in the file `name` (for other capabilities' own keys)."""
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"{name!r} is not a plain file name")
        return self._read_or_create(name, lambda: secrets.token_bytes(32))

    def _read_or_create(self, name: str, make: object) -> bytes:
        path = self.folder / name
        with contextlib.suppress(FileNotFoundError):
            return path.read_bytes()
        private_dir(self.folder)
        assert callable(make)
        content: bytes = make()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_bytes()
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        return content
