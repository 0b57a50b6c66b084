"""Callables for `python -m shopfloor.sdk.run tests.sdk.targets:<name>`: each prints what
happened to it, so the test reading its output can tell."""

from __future__ import annotations

import asyncio
import logging
import time

NOT_CALLABLE = 42


def say(text: str) -> None:
    print(text, flush=True)


async def returns() -> None:
    await asyncio.sleep(0)
    say("returned")


def plain() -> None:
    say("plain function called")


async def raises() -> None:
    raise RuntimeError("the spindle\njammed")


def plain_raises() -> None:
    raise ValueError("no such tool")


async def waits() -> None:
    """Waits until cancelled, then cleans up (awaiting) and lets the cancellation through."""
    say("ready")
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        await asyncio.sleep(0.05)
        say("cleaned up")
        raise


async def waits_then_returns() -> None:
    """Takes the cancellation as its cue to finish, and returns."""
    say("ready")
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        say("cleaned up")


def plain_waits() -> None:
    try:
        say("ready")  # inside: the signal may come as soon as the line is out
        while True:
            time.sleep(0.02)
    finally:
        say("cleaned up")


async def cleanup_fails() -> None:
    say("ready")
    try:
        await asyncio.Event().wait()
    finally:
        raise OSError("the disk is gone")


async def cancels_itself() -> None:
    task = asyncio.current_task()
    assert task is not None
    task.cancel()
    await asyncio.sleep(1)


async def logs() -> None:
    logging.getLogger("agent").info("hello from %s", "the agent")
    logging.getLogger("agent").info("Authorization: Thing 0123456789abcdef")
