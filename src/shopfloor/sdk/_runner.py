"""Running an agent's callable to its end or until it is told to stop.

A coroutine function runs under `asyncio.run`, and SIGTERM or SIGINT cancel it: the
coroutine sees `CancelledError` where it awaits and may clean up (awaiting is fine)
before it returns or lets the cancellation through. A plain function is called, and
the same signals raise `KeyboardInterrupt` in it, so its `finally` blocks run.

Exit statuses: 0 after a clean return or a stop signal, 1 when the agent raised (the
traceback, then one line naming the exception, on stderr), 2 when the target cannot
be imported (`shopfloor.sdk.run` only).
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import signal
import sys
import traceback
from collections.abc import Callable
from types import FrameType

from shopfloor._logging import configure_logging

__all__ = [
    "EXIT_FAILED",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "TargetNotFound",
    "describe",
    "load_target",
    "run_agent",
]

logger = logging.getLogger("shopfloor.sdk.run")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_NOT_FOUND = 2
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
PROGRAM = "shopfloor.sdk.run"


class TargetNotFound(Exception):
    """A `module:callable` reference that names nothing callable one can import."""


def load_target(reference: str) -> Callable[[], object]:
    """The callable `package.module:name` names (`name` may be dotted: `Class.method`).

    Raises `TargetNotFound` with a message for a person; when the module was found but
    raised while it was imported, that exception is the cause.
    """
    module_name, colon, attribute = reference.partition(":")
    if not colon or not module_name or not attribute:
        raise TargetNotFound("a target is `package.module:callable`")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if module_name == missing or module_name.startswith(f"{missing}."):
            raise TargetNotFound(
                f"no module named {missing!r} (is its folder the current directory or on "
                "PYTHONPATH?)"
            ) from None
        raise TargetNotFound(f"importing {module_name} failed: {exc}") from exc
    except Exception as exc:
        raise TargetNotFound(
            f"importing {module_name} failed: {type(exc).__name__}: {exc}"
        ) from exc
    target: object = module
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise TargetNotFound(f"{module_name} has no attribute {attribute!r}") from None
    if not callable(target):
        raise TargetNotFound(f"{reference} is a {type(target).__name__}, not a callable")
    return target


def run_agent(target: Callable[[], object]) -> int:
    """Run `target` (a coroutine function or a plain one, without arguments) to its end
    or until SIGTERM/SIGINT; the exit status for the process. Call it from the main
    thread. Logging goes to stdout, one line per record with its time, secrets redacted."""
    configure_logging(fmt="text", stream=sys.stdout)
    interrupt_on_stop_signals()
    name = describe(target)
    try:
        if inspect.iscoroutinefunction(target):
            asyncio.run(_until_stopped(target))
        else:
            target()
    except KeyboardInterrupt:
        logger.info("%s stopped", name)
    except asyncio.CancelledError:
        _report(f"{name} was cancelled without a stop signal")
        return EXIT_FAILED
    except Exception as exc:
        traceback.print_exc()
        _report(f"{name} failed: {type(exc).__name__}: {exc}")
        return EXIT_FAILED
    return EXIT_OK


def describe(target: Callable[..., object]) -> str:
    """`module:qualname` of a callable, as a target reference spells it."""
    module = getattr(target, "__module__", None) or "?"
    return f"{module}:{getattr(target, '__qualname__', repr(target))}"


def interrupt_on_stop_signals() -> None:
    """Make SIGTERM raise `KeyboardInterrupt`, as SIGINT does, until an event loop takes
    both over: a stop before the agent's loop runs is then a stop, not a kill."""
    signal.signal(signal.SIGTERM, _interrupt)
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _stop_signals() -> list[signal.Signals]:
    """SIGTERM, and SIGINT unless this process was started with it ignored (as a shell
    starts a background job), which Python honours too."""
    return [s for s in STOP_SIGNALS if signal.getsignal(s) is not signal.SIG_IGN]


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


async def _until_stopped(target: Callable[[], object]) -> None:
    coroutine = target()
    assert inspect.iscoroutine(coroutine), "a coroutine function returns a coroutine"
    task = asyncio.create_task(coroutine, name=describe(target))
    loop = asyncio.get_running_loop()
    received: list[str] = []

    def stop(signum: signal.Signals) -> None:
        if not received:
            logger.info("%s received, stopping %s", signum.name, task.get_name())
        received.append(signum.name)
        task.cancel()  # a second signal interrupts a slow cleanup

    signals = _stop_signals()
    for signum in signals:
        loop.add_signal_handler(signum, stop, signum)
    try:
        await task
    except asyncio.CancelledError:
        if not received:
            raise
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
        interrupt_on_stop_signals()


def _report(message: str) -> None:
    """One line on stderr, however many lines the exception's text has."""
    print(f"{PROGRAM}: {' '.join(message.split())}", file=sys.stderr, flush=True)
