"""Failed sign-ins: an exponential per-account delay and a separate per-address limit."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from shopfloor.auth import SignInThrottle, SignInThrottled


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _fail(throttle: SignInThrottle, email: str, address: str) -> None:
    throttle.admit(email, address).failed()


def _retry_after(throttle: SignInThrottle, email: str, address: str) -> int:
    with pytest.raises(SignInThrottled) as refused:
        throttle.admit(email, address)
    assert refused.value.code == "too_many_attempts"
    return refused.value.retry_after


def test_account_delay_doubles_up_to_the_cap(clock: Clock) -> None:
    throttle = SignInThrottle(clock=clock, account_free_failures=5, max_delay_seconds=300)
    for _ in range(5):
        _fail(throttle, "ann@plant.example", "10.0.0.1")  # free
    delays = []
    for _ in range(12):
        _fail(throttle, "ann@plant.example", "10.0.0.1")
        delay = _retry_after(throttle, "ann@plant.example", "10.0.0.1")
        delays.append(delay)
        clock.advance(delay)
    assert delays == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]


def test_the_account_is_one_whatever_the_spelling(clock: Clock) -> None:
    throttle = SignInThrottle(clock=clock, account_free_failures=1)
    _fail(throttle, "ann@plant.example", "10.0.0.1")
    _fail(throttle, "ANN@Plant.Example", "10.0.0.2")
    assert _retry_after(throttle, "Ann@plant.example", "10.0.0.3") == 1


def test_a_success_clears_the_account_and_the_address(clock: Clock) -> None:
    throttle = SignInThrottle(clock=clock, account_free_failures=3, address_free_failures=3)
    for _ in range(3):
        _fail(throttle, "ann@plant.example", "10.0.0.1")
    throttle.admit("ann@plant.example", "10.0.0.1").succeeded()
    for _ in range(3):  # three free failures again, for both the account and the address
        _fail(throttle, "ann@plant.example", "10.0.0.1")
    _fail(throttle, "ann@plant.example", "10.0.0.1")
    assert _retry_after(throttle, "ann@plant.example", "10.0.0.1") == 1


def test_the_address_limit_is_separate_from_the_accounts(clock: Clock) -> None:
    # Password spraying: one guess at each of many accounts from one address.
    throttle = SignInThrottle(clock=clock, account_free_failures=5, address_free_failures=20)
    for n in range(21):
        _fail(throttle, f"user{n}@plant.example", "10.6.6.6")
    assert _retry_after(throttle, "user99@plant.example", "10.6.6.6") == 1
    # the same accounts from another address are not held back
    throttle.admit("user0@plant.example", "10.0.0.2").failed()


def test_an_attacker_elsewhere_does_not_lock_out_a_known_address(clock: Clock) -> None:
    throttle = SignInThrottle(clock=clock, account_free_failures=5)
    throttle.admit("ann@plant.example", "10.0.0.1").succeeded()  # Ann's desk
    for _ in range(6):
        _fail(throttle, "ann@plant.example", "203.0.113.9")
    assert _retry_after(throttle, "ann@plant.example", "203.0.113.9") == 1
    throttle.admit("ann@plant.example", "10.0.0.1").succeeded()  # not held back
    # ... and an unknown address is: the attacker may not just pick a fresh one
    assert _retry_after(throttle, "ann@plant.example", "198.51.100.7") == 1


def test_failures_are_forgotten_after_a_quiet_while(clock: Clock) -> None:
    throttle = SignInThrottle(
        clock=clock, account_free_failures=2, address_free_failures=2, forget_after_seconds=900
    )
    _fail(throttle, "ann@plant.example", "10.0.0.1")
    _fail(throttle, "ann@plant.example", "10.0.0.1")
    clock.advance(901)
    _fail(throttle, "ann@plant.example", "10.0.0.1")
    _fail(throttle, "ann@plant.example", "10.0.0.1")
    throttle.admit("ann@plant.example", "10.0.0.1").failed()  # the third only now


def test_attempts_in_flight_count_before_their_answer(clock: Clock) -> None:
    # Concurrent guesses all admitted before the first is answered would bypass the limit.
    throttle = SignInThrottle(clock=clock, account_free_failures=5)
    in_flight = [throttle.admit("ann@plant.example", "10.0.0.1") for _ in range(6)]
    assert _retry_after(throttle, "ann@plant.example", "10.0.0.1") == 1
    for attempt in in_flight:
        attempt.failed()


def test_memory_stays_bounded(clock: Clock) -> None:
    throttle = SignInThrottle(clock=clock, max_entries=100)
    for n in range(1000):
        _fail(throttle, f"user{n}@plant.example", f"10.0.{n // 256}.{n % 256}")
    assert throttle.tracked() <= 200  # accounts and addresses, 100 each at most


def test_failures_and_lockouts_are_counted(clock: Clock) -> None:
    metrics = CollectorRegistry()
    throttle = SignInThrottle(clock=clock, account_free_failures=2, metrics_registry=metrics)
    for _ in range(3):
        _fail(throttle, "ann@plant.example", "10.0.0.1")
    _retry_after(throttle, "ann@plant.example", "10.0.0.1")
    _retry_after(throttle, "ann@plant.example", "10.0.0.1")

    def sample(name: str, **labels: str) -> float | None:
        return metrics.get_sample_value(name, labels)

    assert sample("shopfloor_sign_in_failures_total") == 3
    assert sample("shopfloor_sign_in_lockouts_total", scope="account") == 1
    assert sample("shopfloor_sign_in_lockouts_total", scope="address") == 0
    assert sample("shopfloor_sign_in_throttled_total", scope="account") == 2
