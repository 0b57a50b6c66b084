"""Durable pull consumers on JetStream.

A consumer owns one reply inbox and asks the server for messages with pull requests
(`$JS.API.CONSUMER.MSG.NEXT.<stream>.<durable>` with `{"batch", "no_wait"|"expires"}`).
The server answers with the messages, then a status on the request's own reply
subject (404/408) once the request is done; messages may also arrive late from an
earlier request, which is harmless since any delivery of this durable is ours to handle.

We pull ourselves rather than through `PullSubscription.fetch` because, once it has
to wait, that call holds even the first message back until the whole batch arrives
or its timeout passes. Here one-by-one iteration asks for what is ready now
(`no_wait`, up to `batch`) and, only when nothing is, waits for a single message;
`fetch` keeps the server's semantics: up to N messages within `max_wait`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections import deque
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

from shopfloor.core import lazy_import

from ._envelope import Envelope
from ._errors import EnvelopeDecodeError, MessagingError
from ._nats import translate_nats_error
from ._receivers import Consumer, Delivery
from ._subjects import envelope_subject, reduce_filters, subject_matches
from ._wire import decode_envelope

if TYPE_CHECKING:
    import nats.errors
    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription as NatsCoreSubscription

    from ._nats import NatsBus
else:
    nats = lazy_import("nats")  # imported when a bus first connects (see _nats.py)

__all__ = ["NatsConsumer", "NatsDelivery"]

logger = logging.getLogger(__name__)

_IDLE_PULL = 5.0  # seconds an idle consumer's request waits on the server
_RESPONSE_GRACE = 1.0  # extra seconds for the server's end-of-request status
_ERROR_PAUSE = 0.25  # seconds before pulling again after the server refused a pull
_STATUS = "Status"
_DESCRIPTION = "Description"
_END_OF_REQUEST = frozenset({"404", "408"})  # no messages / request expired
_HEARTBEAT = "100"


class NatsDelivery(Delivery):
    def __init__(self, consumer: NatsConsumer, msg: Msg, envelope: Envelope, attempt: int) -> None:
        super().__init__(envelope, attempt=attempt)
        self._consumer = consumer
        self._msg = msg

    async def _ack(self) -> None:
        try:
            await self._msg.ack()
        except Exception as exc:
            raise translate_nats_error(exc, "ack") from exc
        self._consumer._outstanding.pop(self, None)

    async def _nak(self, delay: float | None) -> None:
        try:
            await self._msg.nak(delay=delay)
        except Exception as exc:
            raise translate_nats_error(exc, "nak") from exc
        self._consumer._outstanding.pop(self, None)

    async def _in_progress(self) -> None:
        try:
            await self._msg.in_progress()
        except Exception as exc:
            raise translate_nats_error(exc, "in_progress") from exc


class NatsConsumer(Consumer):
    """A consumer attached to a durable pull consumer of the bus's stream.

    Leaving the consumer naks what it holds unsettled, so another consumer gets it at
    once; if the process dies instead, the server redelivers after `ack_wait`.
    """

    def __init__(
        self,
        bus: NatsBus,
        durable: str,
        filters: Sequence[str],
        *,
        batch: int,
        skip_protocols: Collection[str] = (),
    ) -> None:
        super().__init__(durable, filters, batch=batch, skip_protocols=skip_protocols)
        self._bus = bus
        # With one filter the server filters exactly; otherwise it uses a covering
        # filter and the rest is dropped here.
        self._server_filters_exactly = len(reduce_filters(self.filters)) == 1
        self._next_subject = f"$JS.API.CONSUMER.MSG.NEXT.{bus.config.stream}.{durable}"
        self._inbox = ""
        self._sub: NatsCoreSubscription | None = None
        self._requests = itertools.count(1)
        self._arrived: deque[Msg] = deque()
        self._arrival = asyncio.Event()
        self._ready: deque[NatsDelivery] = deque()
        # Created and not settled; a dict keeps their order for handing them back.
        self._outstanding: dict[NatsDelivery, None] = {}

    async def _start(self) -> None:
        await self._bus.declare(self.durable, self.filters)
        nc = self._bus._connection()
        self._inbox = nc.new_inbox()
        try:
            self._sub = await nc.subscribe(f"{self._inbox}.*", cb=self._on_message)
        except Exception as exc:
            raise translate_nats_error(exc, "consume") from exc
        self._bus._consumers.add(self)

    async def _stop(self) -> None:
        self._bus._consumers.discard(self)
        unsettled = list(self._outstanding)
        held = [msg for msg in self._arrived if not (msg.headers or {}).get(_STATUS)]
        self._ready.clear()
        self._arrived.clear()
        try:
            for delivery in unsettled:
                await delivery.nak()
            for msg in held:
                await msg.nak()
            if self._sub is not None:
                await self._sub.unsubscribe()
        except (MessagingError, nats.errors.Error) as exc:
            # Best effort: whatever was not handed back is redelivered after ack_wait.
            logger.debug("consumer %s left without handing back: %s", self.durable, exc)

    def _wake(self) -> None:
        self._arrival.set()

    async def _on_message(self, msg: Msg) -> None:
        self._arrived.append(msg)
        self._arrival.set()

    async def _next(self) -> Delivery | None:
        while not self.closed:
            if self._ready:
                return self._ready.popleft()
            messages, refused = await self._pull(self.batch, linger=None)
            if not messages and not refused and not self.closed:
                messages, refused = await self._pull(1, linger=_IDLE_PULL)
            await self._accept(messages)
            if refused and not self._ready and not self.closed:
                await asyncio.sleep(_ERROR_PAUSE)
        return None

    async def fetch(self, max_messages: int, max_wait: float) -> list[Delivery]:
        self._check_open()
        deliveries: list[Delivery] = []
        while self._ready and len(deliveries) < max_messages:
            deliveries.append(self._ready.popleft())
        if len(deliveries) < max_messages and not self.closed:
            # Something in hand already: only top it up with what is ready now.
            linger = None if deliveries else max_wait
            messages, _ = await self._pull(max_messages - len(deliveries), linger=linger)
            await self._accept(messages)
            while self._ready and len(deliveries) < max_messages:
                deliveries.append(self._ready.popleft())
        return deliveries

    async def _pull(self, batch: int, *, linger: float | None) -> tuple[list[Msg], bool]:
        """Messages of one pull request, and whether the server refused the request.

        `linger=None` asks for what is ready now; otherwise the server waits up to
        `linger` seconds to fill the batch.
        """
        nc = self._bus._connection()
        reply = f"{self._inbox}.{next(self._requests)}"
        request: dict[str, object] = {"batch": batch}
        if linger is None:
            request["no_wait"] = True
            wait = self._bus.config.publish_timeout
        else:
            request["expires"] = max(1_000_000, int(linger * 1e9))
            wait = linger + _RESPONSE_GRACE
        generation = self._bus.generation
        try:
            await nc.publish(self._next_subject, json.dumps(request).encode(), reply=reply)
        except Exception as exc:
            raise translate_nats_error(exc, "pull") from exc
        now = asyncio.get_running_loop().time()
        deadline = now + wait
        # A lingering request that delivered something may expire without a status, so
        # with messages in hand we stop at its expiry instead of waiting out the grace.
        expiry = deadline if linger is None else now + linger
        messages: list[Msg] = []
        # A reconnect loses requests the server had queued: stop waiting for this one.
        while len(messages) < batch and not self.closed and generation == self._bus.generation:
            if not self._arrived:
                self._arrival.clear()
                try:
                    async with asyncio.timeout_at(expiry if messages else deadline):
                        await self._arrival.wait()
                except TimeoutError:
                    break
                continue
            msg = self._arrived.popleft()
            headers = msg.headers or {}
            status = headers.get(_STATUS)
            if status is None:
                messages.append(msg)
            elif msg.subject != reply or status == _HEARTBEAT:
                continue  # the end of an earlier request, or a keep-alive
            elif status in _END_OF_REQUEST:
                break
            else:
                # e.g. 409 "Exceeded MaxAckPending" or "Consumer Deleted"
                logger.warning(
                    "pull for consumer %s refused: %s %s",
                    self.durable,
                    status,
                    headers.get(_DESCRIPTION, ""),
                )
                return messages, True
        return messages, False

    async def _accept(self, messages: list[Msg]) -> None:
        """Turn pulled messages into deliveries; settle those this consumer never shows."""
        prefix = self._bus.config.prefix
        for msg in messages:
            try:
                attempt = msg.metadata.num_delivered
            except nats.errors.NotJSMessageError:
                continue  # not a JetStream delivery: someone published into our inbox
            try:
                envelope = decode_envelope(msg.subject, msg.headers, msg.data, prefix=prefix)
            except EnvelopeDecodeError as exc:
                logger.warning("terminating malformed message on %s: %s", msg.subject, exc)
                await self._settle_quietly(msg, terminate=True)
                continue
            if not self._server_filters_exactly and not any(
                subject_matches(f, envelope_subject(envelope)) for f in self.filters
            ):
                await self._settle_quietly(msg, terminate=False)  # matched the covering filter only
                continue
            if envelope.protocol in self.skip_protocols:
                await self._settle_quietly(msg, terminate=False)  # not for this durable
                continue
            delivery = NatsDelivery(self, msg, envelope, attempt)
            self._outstanding[delivery] = None
            self._ready.append(delivery)

    async def _settle_quietly(self, msg: Msg, *, terminate: bool) -> None:
        try:
            await (msg.term() if terminate else msg.ack())
        except nats.errors.Error as exc:
            # Not settled: the server redelivers it after ack_wait and we try again.
            logger.debug("could not settle a skipped message: %s", type(exc).__name__)
