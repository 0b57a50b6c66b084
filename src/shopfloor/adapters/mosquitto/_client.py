"""An admin connection to Mosquitto's dynamic-security plugin (MQTT v5 over aiomqtt).

async with DynsecClient.from_url("mqtt://admin:secret@broker:1883") as dynsec:
    responses = await dynsec.execute([list_clients()])

One background task owns the connection: it subscribes to the response topic before
the client counts as connected (answers published before that would be lost), reads
answers and resolves the waiting requests by their correlation data, and reconnects
with capped, randomised backoff. A request waits for a connection, then for its
answers, both within the client's timeout; a lost connection fails the requests in
flight with `DynsecUnavailable`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from shopfloor.core import Backoff, Lifecycle, lazy_import

if TYPE_CHECKING:
    import aiomqtt
else:
    aiomqtt = lazy_import("aiomqtt")  # with paho and dnspython: when first used

from . import _dynsec as dynsec
from ._dynsec import DynsecCommand, DynsecResponse
from ._errors import DynsecUnavailable, InvalidBrokerUrl

__all__ = ["BrokerUrl", "DynsecClient", "login_hint"]

logger = logging.getLogger(__name__)

#: Commands per published batch: the plugin rewrites its config file once per command,
#: so huge batches block the broker; tiny ones cost a round trip each.
BATCH_SIZE = 100
_NODELAY = (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
#: CONNACK "not authorised": Mosquitto answers a wrong login and a dynamic-security
#: plugin without a readable file alike (measured on 2.0.11).
_NOT_AUTHORISED = 135


def login_hint(error: BaseException | None) -> str:
    """What to check after the broker refused a login: '' for other failures."""
    if not isinstance(error, aiomqtt.MqttCodeError) or error.rc is None:
        return ""
    code = error.rc if isinstance(error.rc, int) else error.rc.value
    if code != _NOT_AUTHORISED:
        return ""
    return (
        "; check the user and password of SHOPFLOOR_MQTT_BROKER_URL (percent-encode "
        "@ : / % # ? in them), and that the broker can read its dynamic-security file "
        "(without it Mosquitto refuses every client; its log says 'Error loading Dynamic "
        "security plugin config'): `shopfloor mosquitto check` checks both"
    )


@dataclass(frozen=True, slots=True)
class BrokerUrl:
    """`mqtt://user:password@host:port`, the form of SHOPFLOOR_MQTT_BROKER_URL."""

    host: str
    port: int
    username: str
    password: str = field(repr=False)

    @classmethod
    def parse(cls, url: str) -> BrokerUrl:
        parts = urlsplit(url)
        if parts.scheme != "mqtt":
            raise InvalidBrokerUrl("the Mosquitto broker URL must start with mqtt://")
        if parts.path.strip("/") or parts.query or parts.fragment:
            # A raw / ? or # in the password ends the host part early.
            raise InvalidBrokerUrl(
                "the Mosquitto broker URL is mqtt://user:password@host:port with nothing "
                "after the port: percent-encode / ? # @ : % in the user and password "
                "(python3 -c 'import urllib.parse,sys; print(urllib.parse.quote(sys.argv[1], "
                "safe=\"\"))' '<password>')"
            )
        try:
            port = parts.port or 1883
        except ValueError as exc:
            raise InvalidBrokerUrl("the Mosquitto broker URL has an invalid port") from exc
        if not parts.hostname or not parts.username or parts.password is None:
            raise InvalidBrokerUrl(
                "the Mosquitto broker URL needs mqtt://admin-user:password@host:port"
            )
        return cls(
            host=parts.hostname,
            port=port,
            username=unquote(parts.username),
            password=unquote(parts.password),
        )


class DynsecClient(Lifecycle):
    """Sends dynamic-security command batches and returns the plugin's answers."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        username: str,
        password: str,
        timeout: float = 10.0,
        backoff_base: float = 0.1,
        backoff_cap: float = 5.0,
    ) -> None:
        super().__init__()
        self._host = host
        self._port = port
        self._username = username
        self._password = password
        self._timeout = timeout
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._backoff = Backoff(base=backoff_base, cap=backoff_cap)
        self._prefix = uuid.uuid4().hex[:12]
        self._ids = itertools.count(1)
        self._pending: dict[str, asyncio.Future[DynsecResponse]] = {}
        self._mqtt: aiomqtt.Client | None = None
        self._connected = asyncio.Event()
        self._last_error: BaseException | None = None
        self._was_ready = False

    @property
    def last_error(self) -> BaseException | None:
        """Why the latest connection attempt failed (None once connected)."""
        return self._last_error

    @classmethod
    def from_url(cls, url: str, **options: float) -> DynsecClient:
        broker = BrokerUrl.parse(url)
        return cls(
            host=broker.host,
            port=broker.port,
            username=broker.username,
            password=broker.password,
            **options,
        )

    async def _start(self, stack: contextlib.AsyncExitStack) -> None:
        # Registered first, so it runs last: after the connection task has ended.
        stack.callback(self._fail_pending, DynsecUnavailable("the dynsec client is closed"))
        await self.spawn("dynsec-connection", self._run, restart=False, cancel_on_stop=True)
        await self._wait_connected()

    async def execute(self, commands: Sequence[DynsecCommand]) -> list[DynsecResponse]:
        """Run commands in order; one answer per command, errors included (not raised)."""
        responses: list[DynsecResponse] = []
        for start in range(0, len(commands), BATCH_SIZE):
            responses.extend(await self._execute_batch(commands[start : start + BATCH_SIZE]))
        return responses

    async def run(self, commands: Sequence[DynsecCommand]) -> list[DynsecResponse]:
        """Like `execute`, but raise `DynsecError` for the first command that failed."""
        responses = await self.execute(commands)
        for response in responses:
            response.raise_for_error()
        return responses

    async def _execute_batch(self, commands: Sequence[DynsecCommand]) -> list[DynsecResponse]:
        loop = asyncio.get_running_loop()
        tagged: list[DynsecCommand] = []
        futures: list[asyncio.Future[DynsecResponse]] = []
        try:
            async with asyncio.timeout(self._timeout):
                await self._connected.wait()
                mqtt = self._mqtt
                if mqtt is None:
                    raise DynsecUnavailable("the broker connection was lost")
                # Registered only now: a connection lost earlier fails what is in flight.
                for command in commands:
                    correlation = f"{self._prefix}-{next(self._ids)}"
                    tagged.append({**command, "correlationData": correlation})
                    futures.append(loop.create_future())
                    self._pending[correlation] = futures[-1]
                try:
                    await mqtt.publish(dynsec.CONTROL_TOPIC, dynsec.encode_commands(tagged), qos=1)
                except aiomqtt.MqttError as exc:
                    raise DynsecUnavailable(f"cannot send dynsec commands: {exc}") from exc
                return list(await asyncio.gather(*futures))
        except TimeoutError as exc:
            raise DynsecUnavailable(
                f"no dynsec answer from {self._host}:{self._port} within {self._timeout} s"
            ) from exc
        finally:
            for command, future in zip(tagged, futures, strict=True):
                self._pending.pop(command["correlationData"], None)
                if not future.done():
                    future.cancel()
                elif not future.cancelled():
                    future.exception()  # retrieved: one failure already reported them all

    async def _wait_connected(self) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                await self._connected.wait()
        except TimeoutError as exc:
            reason = f": {self._last_error}" if self._last_error else ""
            raise DynsecUnavailable(
                f"cannot connect to Mosquitto at {self._host}:{self._port} as admin "
                f"{self._username}{reason}{login_hint(self._last_error)}"
            ) from exc

    async def _run(self, stopping: asyncio.Event) -> None:
        # Cancelled on close, and it also watches `stopping`: aiomqtt connects under
        # `asyncio.wait_for`, which on Python 3.11 can lose a cancellation that arrives
        # as the attempt ends, and a loop relying on the cancellation alone then went on
        # reconnecting with a wrong password while its owner waited for it.
        attempt = 0
        while not stopping.is_set():
            try:
                await self._session()
            except aiomqtt.MqttError as exc:
                self._last_error = exc
                logger.warning("dynsec connection to %s:%s lost: %s", self._host, self._port, exc)
            # A session that got as far as subscribing starts the backoff over.
            attempt = 0 if self._was_ready else attempt + 1
            self._was_ready = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self._backoff.delay(attempt))

    async def _session(self) -> None:
        client = aiomqtt.Client(
            self._host,
            self._port,
            username=self._username,
            password=self._password,
            identifier=f"shopfloor-dynsec-{self._prefix}",
            protocol=aiomqtt.ProtocolVersion.V5,
            clean_start=True,
            socket_options=[_NODELAY],
        )
        try:
            async with client:
                await client.subscribe(dynsec.RESPONSE_TOPIC, qos=1)
                self._mqtt = client
                self._connected.set()
                self._was_ready = True
                self._last_error = None
                logger.info("dynsec admin connected to %s:%s", self._host, self._port)
                async for message in client.messages:
                    self._dispatch(message.payload)
        finally:
            self._mqtt = None
            self._connected.clear()
            self._fail_pending(DynsecUnavailable("the broker connection was lost"))

    def _dispatch(self, payload: object) -> None:
        if not isinstance(payload, bytes | bytearray):
            return
        try:
            responses = dynsec.decode_responses(bytes(payload))
        except ValueError as exc:
            logger.warning("ignoring a malformed dynsec response: %s", exc)
            return
        for response in responses:
            # Answers to other admin connections arrive here too: they match no request.
            future = self._pending.get(response.correlation_data or "")
            if future is not None and not future.done():
                future.set_result(response)

    def _fail_pending(self, error: DynsecUnavailable) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)
