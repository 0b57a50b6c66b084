"""Failed sign-ins held back per account and per source address, in memory.

Two independent limits, both an exponential delay (1 s, 2 s, 4 s, ... capped):

- per account, after `account_free_failures` failures: guessing one password;
- per source address, after `address_free_failures` failures over any accounts:
  trying one common password on many accounts.

While a limit holds, attempts are refused before any password is checked, the right
password included: were it accepted, the delay would slow only wrong guesses and an
attacker guessing through a lockout would still learn the password at full speed.
Refused attempts do not lengthen the delay; a success clears that account's and that
address's failures. Failures are forgotten after `forget_after_seconds` without one.

So that an attacker cannot keep a real user out, an address the account signed in from
before has its own account limit, apart from the one every other address shares: the
user's own desk keeps working while guesses from elsewhere wait out the cap.

An attempt counts as failed from the moment it is admitted, and a success refunds it:
otherwise a burst of concurrent guesses would all pass before the first was answered.

State is per process: with N API processes, an attacker who reaches all of them gets
N times the allowance (docs/decisions.md).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter

from shopfloor.core import ErrorKind

from ._errors import AuthError

Clock = Callable[[], float]

ACCOUNT, ADDRESS = "account", "address"


class SignInThrottled(AuthError):
    """Too many failed sign-ins for an account or from an address; retry later (429)."""

    code = "too_many_attempts"
    kind = ErrorKind.RATE_LIMITED

    def __init__(self, message: str, *, retry_after: int, scope: str) -> None:
        super().__init__(message, code="too_many_attempts", retry_after=retry_after)
        self.scope = scope


@dataclass(slots=True)
class _Failures:
    count: int = 0
    last: float = 0.0
    blocked_until: float = 0.0


class _Lockouts:
    """Failure counts by key with an exponential delay; the least recently failed go first."""

    def __init__(
        self,
        *,
        free_failures: int,
        first_delay: float,
        max_delay: float,
        forget_after: float,
        max_entries: int,
    ) -> None:
        self._free = free_failures
        self._first = first_delay
        self._max = max_delay
        self._forget = forget_after
        self._max_entries = max_entries
        self._by_key: dict[Hashable, _Failures] = {}

    def __len__(self) -> int:
        return len(self._by_key)

    def wait(self, key: Hashable, now: float) -> float:
        failures = self._by_key.get(key)
        return 0.0 if failures is None else max(0.0, failures.blocked_until - now)

    def charge(self, key: Hashable, now: float) -> bool:
        """Count a failure; True when it starts a delay."""
        failures = self._by_key.pop(key, None)  # re-inserted last: dict order is recency
        if failures is None or now - failures.last > self._forget:
            failures = _Failures()
        failures.count += 1
        failures.last = now
        self._by_key[key] = failures
        if len(self._by_key) > self._max_entries:
            del self._by_key[next(iter(self._by_key))]
        over = failures.count - self._free
        if over <= 0:
            return False
        failures.blocked_until = now + min(self._max, self._first * 2 ** min(over - 1, 32))
        return True

    def clear(self, key: Hashable) -> None:
        self._by_key.pop(key, None)


@dataclass(frozen=True, slots=True)
class _Metrics:
    failures: Counter
    lockouts: Counter
    throttled: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> _Metrics:
        return cls(
            failures=Counter(
                "shopfloor_sign_in_failures",
                "Sign-ins refused for a wrong e-mail or password (wrong current passwords too).",
                registry=registry,
            ),
            lockouts=Counter(
                "shopfloor_sign_in_lockouts",
                "Delays begun after repeated failed sign-ins, by account or source address.",
                ["scope"],
                registry=registry,
            ),
            throttled=Counter(
                "shopfloor_sign_in_throttled",
                "Sign-in attempts answered 429 during a delay, by account or source address.",
                ["scope"],
                registry=registry,
            ),
        )


class SignInAttempt:
    """One admitted attempt: report how it went, once."""

    def __init__(self, throttle: SignInThrottle, account: tuple[str, str], address: str) -> None:
        self._throttle = throttle
        self._account = account
        self._address = address

    def succeeded(self) -> None:
        self._throttle._succeeded(self._account, self._address)

    def failed(self) -> None:
        self._throttle._metrics.failures.inc()


class SignInThrottle:
    def __init__(
        self,
        *,
        account_free_failures: int = 5,
        address_free_failures: int = 20,
        first_delay_seconds: float = 1.0,
        max_delay_seconds: float = 300.0,
        forget_after_seconds: float = 900.0,
        max_entries: int = 100_000,
        known_addresses_per_account: int = 4,
        clock: Clock = time.monotonic,
        metrics_registry: CollectorRegistry | None = None,
    ) -> None:
        """Limits with documented defaults; `max_entries` bounds each table's memory.

        Without `metrics_registry` the counters live in a registry of their own, which
        no `/metrics` exports.
        """
        self._clock = clock
        self._accounts = _Lockouts(
            free_failures=account_free_failures,
            first_delay=first_delay_seconds,
            max_delay=max_delay_seconds,
            forget_after=forget_after_seconds,
            max_entries=max_entries,
        )
        self._addresses = _Lockouts(
            free_failures=address_free_failures,
            first_delay=first_delay_seconds,
            max_delay=max_delay_seconds,
            forget_after=forget_after_seconds,
            max_entries=max_entries,
        )
        self._known: dict[str, list[str]] = {}  # account → addresses it signed in from
        self._known_per_account = known_addresses_per_account
        self._max_entries = max_entries
        self._metrics = _Metrics.create(metrics_registry or CollectorRegistry())
        for scope in (ACCOUNT, ADDRESS):  # exported at 0 before the first lockout
            self._metrics.lockouts.labels(scope)
            self._metrics.throttled.labels(scope)

    def tracked(self) -> int:
        """Accounts and addresses with failures held in memory."""
        return len(self._accounts) + len(self._addresses)

    def admit(self, email: str, address: str) -> SignInAttempt:
        """Admit an attempt (counted as failed until it succeeds), or raise SignInThrottled."""
        now = self._clock()
        account = email.strip().lower()
        known = self._known.get(account, ())
        account_key = (account, address if address in known else "")
        waits = {
            ACCOUNT: self._accounts.wait(account_key, now),
            ADDRESS: self._addresses.wait(address, now),
        }
        scope = max(waits, key=lambda s: waits[s])
        if waits[scope] > 0:
            self._metrics.throttled.labels(scope).inc()
            what = "this account" if scope == ACCOUNT else "this address"
            raise SignInThrottled(
                f"too many failed sign-ins for {what}; try again later",
                retry_after=max(1, math.ceil(waits[scope])),
                scope=scope,
            )
        if self._accounts.charge(account_key, now):
            self._metrics.lockouts.labels(ACCOUNT).inc()
        if self._addresses.charge(address, now):
            self._metrics.lockouts.labels(ADDRESS).inc()
        return SignInAttempt(self, account_key, address)

    def _succeeded(self, account_key: tuple[str, str], address: str) -> None:
        self._accounts.clear(account_key)
        self._addresses.clear(address)
        account = account_key[0]
        known = [a for a in self._known.pop(account, []) if a != address]
        self._known[account] = [*known, address][-self._known_per_account :]
        if len(self._known) > self._max_entries:
            del self._known[next(iter(self._known))]
