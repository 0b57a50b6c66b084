"""Password hashing with Argon2id.

The defaults are argon2-cffi's recommended parameters (RFC 9106's second choice: 3 passes
over 64 MiB). A small edge box may lower them with `SHOPFLOOR_PASSWORD_TIME_COST` and
`SHOPFLOOR_PASSWORD_MEMORY_KIB`; each hash carries its own parameters, so hashes made
before a change keep verifying and keep their old cost until the password is changed.
"""

from __future__ import annotations

from functools import cached_property

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_PASSWORD_LENGTH = 8
DEFAULT_TIME_COST = 3
DEFAULT_MEMORY_KIB = 65536


class Passwords:
    """Hashes and verifies passwords at one cost. Both block for the hash's time (about
    0.1 s at the defaults): call them in a worker thread from async code."""

    def __init__(
        self, *, time_cost: int = DEFAULT_TIME_COST, memory_kib: int = DEFAULT_MEMORY_KIB
    ) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib)

    @cached_property
    def _dummy_hash(self) -> str:
        # Verified against when the e-mail is unknown, so a login takes as long either way.
        return self._hasher.hash("shopfloor-timing-equaliser")

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        """True when `password` matches; an unknown user (`None`) costs the same time."""
        try:
            return self._hasher.verify(password_hash or self._dummy_hash, password) and bool(
                password_hash
            )
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


_default = Passwords()


def hash_password(password: str) -> str:
    """A hash at the default cost."""
    return _default.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """`Passwords.verify` at the default cost."""
    return _default.verify(password_hash, password)
