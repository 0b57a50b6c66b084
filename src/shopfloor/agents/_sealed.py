"""Agents' credentials at rest: sealed (AES-256-GCM) under a key in the data dir.

What provisioners made (passwords, thing keys) and the agent certificate's private key
are kept so the reconciler can hand them to the agent again (a new process after a
platform restart, a changed env) without making new ones. The key is 32 random bytes
in the data dir's `secrets/` folder, never in the database; the associated data names
the agent, so a sealed value copied to another agent's row does not open.
"""

from __future__ import annotations

import base64
import json
import secrets
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ._errors import AgentError

__all__ = ["SECRET_FILE", "Sealer"]

SECRET_FILE = "agents-secret.bin"  # noqa: S105 - a file name, not a secret
_NONCE = 12


class Sealer:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the agents' sealing key is 32 bytes")
        self._aead = AESGCM(key)

    def seal(self, value: dict[str, Any], *, agent_key: str) -> str:
        nonce = secrets.token_bytes(_NONCE)
        data = json.dumps(value, separators=(",", ":")).encode()
        sealed = nonce + self._aead.encrypt(nonce, data, agent_key.encode())
        return base64.b64encode(sealed).decode()

    def open(self, text: str, *, agent_key: str) -> dict[str, Any]:
        raw = base64.b64decode(text)
        try:
            data = self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], agent_key.encode())
        except InvalidTag:
            raise AgentError(
                f"the credentials of agent {agent_key} do not open with this data dir's key",
                code="agent_credentials_unreadable",
            ) from None
        value: dict[str, Any] = json.loads(data)
        return value
